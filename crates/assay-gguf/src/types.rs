//! ggml's tensor types as GGUF files name them: each type's block size (values per block) and
//! the bytes of one block. The same numbers as ggml's own type table (a test in `assay-llama`
//! compares them, type by type, with the ggml it links), kept here so that reading a GGUF file
//! needs no llama.cpp.

/// (type id, name, values per block, bytes per block); removed types have no row.
const TYPES: [(u32, &str, u64, u64); 35] = [
    (0, "f32", 1, 4),
    (1, "f16", 1, 2),
    (2, "q4_0", 32, 18),
    (3, "q4_1", 32, 20),
    (6, "q5_0", 32, 22),
    (7, "q5_1", 32, 24),
    (8, "q8_0", 32, 34),
    (9, "q8_1", 32, 36),
    (10, "q2_K", 256, 84),
    (11, "q3_K", 256, 110),
    (12, "q4_K", 256, 144),
    (13, "q5_K", 256, 176),
    (14, "q6_K", 256, 210),
    (15, "q8_K", 256, 292),
    (16, "iq2_xxs", 256, 66),
    (17, "iq2_xs", 256, 74),
    (18, "iq3_xxs", 256, 98),
    (19, "iq1_s", 256, 50),
    (20, "iq4_nl", 32, 18),
    (21, "iq3_s", 256, 110),
    (22, "iq2_s", 256, 82),
    (23, "iq4_xs", 256, 136),
    (24, "i8", 1, 1),
    (25, "i16", 1, 2),
    (26, "i32", 1, 4),
    (27, "i64", 1, 8),
    (28, "f64", 1, 8),
    (29, "iq1_m", 256, 56),
    (30, "bf16", 1, 2),
    (34, "tq1_0", 256, 54),
    (35, "tq2_0", 256, 66),
    (39, "mxfp4", 32, 17),
    (40, "nvfp4", 64, 36),
    (41, "q1_0", 128, 18),
    (42, "q2_0", 64, 18),
];

/// One past the highest type id this table knows (ggml's `GGML_TYPE_COUNT`).
pub const TYPE_COUNT: u32 = 43;

/// A tensor type ggml supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GgmlType {
    /// The type id stored in GGUF files.
    pub id: u32,
    /// ggml's name for it.
    pub name: &'static str,
    /// Values per block.
    pub block_size: u64,
    /// Bytes per block.
    pub block_bytes: u64,
}

/// The type with id `id`; `None` for an id ggml does not know or no longer supports.
pub fn ggml_type(id: u32) -> Option<GgmlType> {
    TYPES
        .iter()
        .find(|t| t.0 == id)
        .map(|&(id, name, block_size, block_bytes)| GgmlType {
            id,
            name,
            block_size,
            block_bytes,
        })
}

/// Bytes of a tensor of `ggml_type` with `dims`; `None` for a type ggml does not know (or no
/// longer supports), a first dimension that is not a whole number of blocks, or a size that
/// overflows.
pub fn tensor_bytes(ggml_type_id: u32, dims: &[u64]) -> Option<usize> {
    let t = ggml_type(ggml_type_id)?;
    let ne0 = dims.first().copied().unwrap_or(1);
    if ne0 % t.block_size != 0 {
        return None;
    }
    let row = (ne0 / t.block_size).checked_mul(t.block_bytes)?;
    let total = dims
        .iter()
        .skip(1)
        .try_fold(row, |n, d| n.checked_mul(*d))?;
    usize::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_blocks() {
        // Q4_K: 256 values in 144 bytes.
        assert_eq!(tensor_bytes(12, &[512, 3]), Some(3 * 2 * 144));
        assert_eq!(tensor_bytes(0, &[7]), Some(28));
        assert_eq!(tensor_bytes(12, &[100]), None, "not whole blocks");
        assert_eq!(tensor_bytes(4, &[32]), None, "removed type");
        assert_eq!(tensor_bytes(TYPE_COUNT, &[1]), None, "unknown type");
        assert_eq!(tensor_bytes(0, &[u64::MAX, 2]), None, "overflow");
    }

    #[test]
    fn ids_are_sorted_and_below_the_count() {
        assert!(TYPES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(TYPES.iter().all(|t| t.0 < TYPE_COUNT));
    }
}
