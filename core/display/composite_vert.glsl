#version 430
// One triangle covering the framebuffer.
void main() {
    vec2 p = vec2(float(gl_VertexID & 1), float(gl_VertexID >> 1)) * 4.0 - 1.0;
    gl_Position = vec4(p, 0.0, 1.0);
}
