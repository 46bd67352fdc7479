#version 430
// One instanced quad per splat, drawn far to near. Instance record (frame.INSTANCE_FLOATS), pixels:
// i_quad0 = centre.xy, axis1.xy; i_quad1 = axis2.xy, extend, opacity; i_color = rgb, half-width;
// i_conic = conic a, b, c (inverse 2D covariance [[a, b], [b, c]]), half-height.
layout(location = 0) in vec4 i_quad0;
layout(location = 1) in vec4 i_quad1;
layout(location = 2) in vec4 i_color;
layout(location = 3) in vec4 i_conic;

uniform vec2 u_size;  // framebuffer width, height in pixels

flat out vec2 v_mean;
flat out vec3 v_conic;
flat out vec4 v_color;  // rgb, opacity

void main() {
    // the quad is the oriented rectangle of the ellipse where alpha falls to 1/255
    vec2 corner = vec2(float(gl_VertexID & 1), float(gl_VertexID >> 1)) * 2.0 - 1.0;
    vec2 pix = i_quad0.xy + corner.x * i_quad0.zw + corner.y * i_quad1.xy;
    // OpenCV pixel coordinates (y down) map straight to GL window coordinates: gl_FragCoord is the
    // OpenCV pixel centre (j + 0.5, i + 0.5) and framebuffer row 0 is image row 0 (the top).
    gl_Position = vec4(pix / u_size * 2.0 - 1.0, 0.0, 1.0);
    v_mean = i_quad0.xy;
    v_conic = i_conic.xyz;
    v_color = vec4(i_color.rgb, i_quad1.w);
}
