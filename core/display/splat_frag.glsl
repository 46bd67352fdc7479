#version 430
// gsplat's per-pixel rule, evaluated at the pixel centre from flat inputs (no interpolated varyings:
// llvmpipe's clipping of large quads made interpolated offsets inaccurate):
// alpha = min(0.999, opacity * exp(-sigma)), sigma = 0.5 * d^T conic d, d = mean - pixel centre;
// dropped below 1/255. Premultiplied output for back-to-front "over" (ONE, ONE_MINUS_SRC_ALPHA).
flat in vec2 v_mean;
flat in vec3 v_conic;
flat in vec4 v_color;
out vec4 f_color;

void main() {
    vec2 d = v_mean - gl_FragCoord.xy;
    float sigma = 0.5 * (v_conic.x * d.x * d.x + v_conic.z * d.y * d.y) + v_conic.y * d.x * d.y;
    if (sigma < 0.0) discard;
    float alpha = min(0.999, v_color.a * exp(-sigma));
    if (alpha < 1.0 / 255.0) discard;
    f_color = vec4(v_color.rgb * alpha, alpha);
}
