#version 430
// alpha = min(0.999, opacity * exp(-0.5 * d^T cov2d^-1 d)); below 1/255 the fragment is dropped
// (gsplat's rule). Premultiplied output for back-to-front "over" blending (ONE, ONE_MINUS_SRC_ALPHA).
noperspective in vec2 v_uv;
flat in vec4 v_color;
out vec4 f_color;

void main() {
    float alpha = min(0.999, v_color.a * exp(-0.5 * dot(v_uv, v_uv)));
    if (alpha < 1.0 / 255.0) discard;
    f_color = vec4(v_color.rgb * alpha, alpha);
}
