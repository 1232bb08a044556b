// Where an epilogue stores: y may be a slice of a larger tensor (a concat's part written where it
// lies in the concat's result). The output's vec4s (or packed words) then form rows of p.y_row4
// that lie p.y_pitch4 apart in y, from p.y_offset4 on. The including kernel's Params has the three
// fields. Y_SLICE is a template constant, not a test of p.y_row4: a software adapter runs the
// untaken division anyway, and an ordinary output would pay for it (measured: 8-15% on the zoo
// CNNs on lavapipe).

//
// Y_SWAP (a matrix product storing attention's heads apart, or together again: the ``heads``
// attribute of ops/nn.py) reads the same three fields as the sizes of the swap: the output's vec4s
// computed as [A, X, Y, Z] (y_offset4 = X, y_pitch4 = Y, y_row4 = Z) are stored as [A, Y, X, Z].
// Y_SCATTER (with Y_SWAP: attention's keys, each head transposed): as [A, Y, 4Z, X], y a scalar
// array, a vec4's four values X apart from y_scatter_base().

const Y_SLICE: bool = ${y_slice};
const Y_SWAP: bool = ${y_swap};
const Y_SCATTER: bool = ${y_scatter};

fn y_scatter_base(out_index: u32) -> u32 {
    let z = out_index % p.y_row4;
    let t = out_index / p.y_row4;
    let y = t % p.y_pitch4;
    let x = (t / p.y_pitch4) % p.y_offset4;
    let a = t / p.y_pitch4 / p.y_offset4;
    return ((a * p.y_pitch4 + y) * p.y_row4 * 4u + z * 4u) * p.y_offset4 + x;
}

fn y_index(out_index: u32) -> u32 {
    if (Y_SWAP) {
        let z = out_index % p.y_row4;
        let t = out_index / p.y_row4;
        let y = t % p.y_pitch4;
        let x = (t / p.y_pitch4) % p.y_offset4;
        let a = t / p.y_pitch4 / p.y_offset4;
        return ((a * p.y_pitch4 + y) * p.y_offset4 + x) * p.y_row4 + z;
    }
    if (!Y_SLICE) {
        return out_index;
    }
    return out_index + out_index / p.y_row4 * (p.y_pitch4 - p.y_row4) + p.y_offset4;
}
