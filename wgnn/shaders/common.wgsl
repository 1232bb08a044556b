// Shared by every kernel. Dispatches are 2-D grids of 64-wide workgroups so that more than
// 65535 workgroups fit; flat_id turns the grid position back into one invocation index.
fn flat_id(wid: vec3<u32>, lid: u32, nwg: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid;
}
