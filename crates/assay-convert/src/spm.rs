//! SentencePiece model files (`tokenizer.model`): the pieces with their scores and types, and the
//! two normaliser and trainer settings llama.cpp's vocabulary needs. The file is a protobuf
//! `ModelProto`; only these few fields are read, so a small reader of the wire format stands in
//! for a protobuf code generator and the `.proto` file.

/// A piece's type, as SentencePiece numbers it (and llama.cpp's token types follow).
pub const NORMAL: i32 = 1;
/// The unknown piece.
pub const UNKNOWN: i32 = 2;
/// A control piece (`<s>`, `</s>`).
pub const CONTROL: i32 = 3;
/// A piece defined by the user, matched before the model runs.
pub const USER_DEFINED: i32 = 4;
/// A piece never produced.
pub const UNUSED: i32 = 5;
/// A byte-fallback piece (`<0x41>`).
pub const BYTE: i32 = 6;

/// One piece of the vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// The text, with `▁` for spaces.
    pub text: String,
    /// The score (log probability for unigram, merge priority for BPE).
    pub score: f32,
    /// One of the type constants.
    pub kind: i32,
}

/// What a `tokenizer.model` holds that a GGUF vocabulary needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SpmModel {
    /// The pieces, in id order.
    pub pieces: Vec<Piece>,
    /// `trainer_spec.model_type`: 1 unigram, 2 BPE.
    pub model_type: i32,
    /// `normalizer_spec.add_dummy_prefix`: a space put before the text.
    pub add_dummy_prefix: bool,
}

/// Reads a serialised `ModelProto`; the error says what in the bytes is wrong.
pub fn parse(bytes: &[u8]) -> Result<SpmModel, String> {
    let mut model = SpmModel {
        pieces: Vec::new(),
        model_type: 1,
        add_dummy_prefix: true,
    };
    let mut r = Wire::new(bytes);
    while let Some((field, value)) = r.next_field()? {
        match (field, value) {
            (1, Field::Bytes(piece)) => model.pieces.push(parse_piece(piece)?),
            (2, Field::Bytes(trainer)) => {
                let mut t = Wire::new(trainer);
                while let Some((f, v)) = t.next_field()? {
                    if let (3, Field::Varint(kind)) = (f, v) {
                        model.model_type = kind as i32;
                    }
                }
            }
            (3, Field::Bytes(normalizer)) => {
                let mut n = Wire::new(normalizer);
                while let Some((f, v)) = n.next_field()? {
                    if let (3, Field::Varint(flag)) = (f, v) {
                        model.add_dummy_prefix = flag != 0;
                    }
                }
            }
            _ => {}
        }
    }
    if model.pieces.is_empty() {
        return Err("no pieces: not a SentencePiece model".into());
    }
    Ok(model)
}

fn parse_piece(bytes: &[u8]) -> Result<Piece, String> {
    let mut piece = Piece {
        text: String::new(),
        score: 0.0,
        kind: NORMAL,
    };
    let mut r = Wire::new(bytes);
    while let Some((field, value)) = r.next_field()? {
        match (field, value) {
            (1, Field::Bytes(text)) => {
                piece.text = String::from_utf8(text.to_vec())
                    .map_err(|_| "a piece that is not UTF-8".to_string())?
            }
            (2, Field::Fixed32(bits)) => piece.score = f32::from_bits(bits),
            (3, Field::Varint(kind)) => piece.kind = kind as i32,
            _ => {}
        }
    }
    Ok(piece)
}

/// A field's value on the wire.
enum Field<'a> {
    Varint(u64),
    Fixed32(u32),
    Fixed64,
    Bytes(&'a [u8]),
}

/// A reader of protobuf's wire format over one message.
struct Wire<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Wire<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Wire { bytes, at: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.bytes.get(self.at) else {
                return Err(format!("truncated at byte {}", self.at));
            };
            self.at += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("a varint longer than 10 bytes at byte {}", self.at))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| format!("a field of {n} bytes past the end at byte {}", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn next_field(&mut self) -> Result<Option<(u64, Field<'a>)>, String> {
        if self.at >= self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = key >> 3;
        let value = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Fixed64
            }
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| "a huge length".to_string())?;
                Field::Bytes(self.take(n)?)
            }
            5 => {
                let b = self.take(4)?;
                Field::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            other => return Err(format!("wire type {other} at byte {}", self.at)),
        };
        if let Field::Fixed64 = value {
            return self.next_field();
        }
        Ok(Some((field, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(field: u64, body: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(body.len() as u64, out);
        out.extend_from_slice(body);
    }

    fn piece(text: &str, score: f32, kind: u64) -> Vec<u8> {
        let mut p = Vec::new();
        bytes_field(1, text.as_bytes(), &mut p);
        varint(2 << 3 | 5, &mut p);
        p.extend_from_slice(&score.to_le_bytes());
        varint(3 << 3, &mut p);
        varint(kind, &mut p);
        p
    }

    #[test]
    fn reads_pieces_and_settings() {
        let mut m = Vec::new();
        bytes_field(1, &piece("<unk>", 0.0, 2), &mut m);
        bytes_field(1, &piece("▁the", -3.5, 1), &mut m);
        let mut trainer = Vec::new();
        varint(3 << 3, &mut trainer);
        varint(2, &mut trainer);
        // A 64-bit field the reader skips.
        varint(9 << 3 | 1, &mut trainer);
        trainer.extend_from_slice(&[0; 8]);
        bytes_field(2, &trainer, &mut m);
        let mut normalizer = Vec::new();
        varint(3 << 3, &mut normalizer);
        varint(0, &mut normalizer);
        bytes_field(3, &normalizer, &mut m);
        let model = parse(&m).unwrap();
        assert_eq!(model.pieces.len(), 2);
        assert_eq!(model.pieces[1].text, "▁the");
        assert_eq!(model.pieces[1].score, -3.5);
        assert_eq!(model.pieces[0].kind, UNKNOWN);
        assert_eq!(model.model_type, 2);
        assert!(!model.add_dummy_prefix);
    }

    #[test]
    fn bad_bytes_are_errors() {
        assert!(parse(b"").unwrap_err().contains("no pieces"));
        assert!(parse(&[0x0a, 0x05, 0x01])
            .unwrap_err()
            .contains("past the end"));
        assert!(parse(&[0x0b]).unwrap_err().contains("wire type 3"));
        assert!(parse(&[0x08, 0xff]).unwrap_err().contains("truncated"));
    }
}
