// Where an epilogue stores: y may be a slice of a larger tensor (a concat's part written where it
// lies in the concat's result). The output's vec4s (or packed words) then form rows of p.y_row4
// that lie p.y_pitch4 apart in y, from p.y_offset4 on. The including kernel's Params has the three
// fields. Y_SLICE is a template constant, not a test of p.y_row4: a software adapter runs the
// untaken division anyway, and an ordinary output would pay for it (measured: 8-15% on the zoo
// CNNs on lavapipe).

const Y_SLICE: bool = ${y_slice};

fn y_index(out_index: u32) -> u32 {
    if (!Y_SLICE) {
        return out_index;
    }
    return out_index + out_index / p.y_row4 * (p.y_pitch4 - p.y_row4) + p.y_offset4;
}
