// Boxes and keypoints, drawn over the composited picture in the same render pass as instanced
// quads, so that only the pixels they cover run a fragment: instance i draws quad i of `quads`
// (xmin, ymin, xmax, ymax in target pixels); the first `rects` quads are filled with the box
// colour, the others are keypoint squares cut to a disc.

struct Params {
    width: f32,  // target size in pixels
    height: f32,
    rects: u32,
    quads: u32,
    box_color: vec4<f32>,
    point_color: vec4<f32>,
    corners: array<vec4<f32>, 160>,
}

@group(0) @binding(0) var<uniform> params: Params;

struct Varyings {
    @builtin(position) pos: vec4<f32>,
    @location(0) local: vec2<f32>,  // -1..1 across the quad
    @location(1) @interpolate(flat) disc: u32,
}

@vertex
fn vs_main(@builtin(vertex_index) v: u32, @builtin(instance_index) i: u32) -> Varyings {
    // Two triangles: corners (0,0) (1,0) (0,1) and (0,1) (1,0) (1,1).
    let cx = array<f32, 6>(0.0, 1.0, 0.0, 0.0, 1.0, 1.0);
    let cy = array<f32, 6>(0.0, 0.0, 1.0, 1.0, 0.0, 1.0);
    let q = params.corners[i];
    let t = vec2<f32>(cx[v], cy[v]);
    let px = mix(q.xy, q.zw, t);
    var out: Varyings;
    out.pos = vec4<f32>(px.x / params.width * 2.0 - 1.0, 1.0 - px.y / params.height * 2.0, 0.0, 1.0);
    out.local = t * 2.0 - 1.0;
    out.disc = select(0u, 1u, i >= params.rects);
    return out;
}

@fragment
fn fs_main(in: Varyings) -> @location(0) vec4<f32> {
    if (in.disc == 1u) {
        if (dot(in.local, in.local) > 1.0) {
            discard;
        }
        return vec4<f32>(params.point_color.rgb, 1.0);
    }
    return vec4<f32>(params.box_color.rgb, 1.0);
}
