#version 430
// Final pixel = accumulated premultiplied colour + transmittance * background, clamped to [0, 1].
uniform sampler2D u_accum;  // RGBA32F: rgb premultiplied, a = 1 - T
uniform vec3 u_background;
out vec4 f_color;

void main() {
    vec4 acc = texelFetch(u_accum, ivec2(gl_FragCoord.xy), 0);
    f_color = vec4(clamp(acc.rgb + (1.0 - acc.a) * u_background, 0.0, 1.0), 1.0);
}
