//! The protobuf wire format: varints, keys and length-delimited records.
//!
//! Reading never panics: every read checks the remaining input and reports truncation or
//! overflow as a [`ProtobufError::Malformed`].

use super::error::ProtobufError;

/// How a field's value is laid out on the wire (the low three bits of a key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

impl WireType {
    fn from_bits(bits: u64) -> Result<Self, ProtobufError> {
        match bits {
            0 => Ok(WireType::Varint),
            1 => Ok(WireType::Fixed64),
            2 => Ok(WireType::Len),
            5 => Ok(WireType::Fixed32),
            3 | 4 => Err(ProtobufError::malformed(
                "groups (wire types 3 and 4) are not used by Kubernetes",
            )),
            other => Err(ProtobufError::malformed(format!(
                "invalid wire type {other}"
            ))),
        }
    }

    fn bits(self) -> u64 {
        match self {
            WireType::Varint => 0,
            WireType::Fixed64 => 1,
            WireType::Len => 2,
            WireType::Fixed32 => 5,
        }
    }
}

/// A cursor over one serialized message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value = 0u64;
        for (i, byte) in self.buf.iter().enumerate().take(10) {
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                return Err(ProtobufError::malformed("varint overflows 64 bits"));
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        if self.buf.len() >= 10 {
            Err(ProtobufError::malformed("varint is longer than 10 bytes"))
        } else {
            Err(ProtobufError::malformed("truncated varint"))
        }
    }

    /// A field key: the field number and the wire type of its value.
    pub(crate) fn key(&mut self) -> Result<(u32, WireType), ProtobufError> {
        let key = self.varint()?;
        let tag = u32::try_from(key >> 3)
            .ok()
            .filter(|t| *t != 0)
            .ok_or_else(|| {
                ProtobufError::malformed(format!("invalid field number {}", key >> 3))
            })?;
        Ok((tag, WireType::from_bits(key & 7)?))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], ProtobufError> {
        let len = self.varint()?;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= self.buf.len())
            .ok_or_else(|| {
                ProtobufError::malformed(format!(
                    "length {len} exceeds the {} remaining bytes",
                    self.buf.len()
                ))
            })?;
        let (head, tail) = self.buf.split_at(len);
        self.buf = tail;
        Ok(head)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ProtobufError> {
        let head = self
            .buf
            .get(..N)
            .and_then(|h| <[u8; N]>::try_from(h).ok())
            .ok_or_else(|| ProtobufError::malformed(format!("truncated {N}-byte value")))?;
        self.buf = &self.buf[N..];
        Ok(head)
    }

    pub(crate) fn fixed64(&mut self) -> Result<[u8; 8], ProtobufError> {
        self.fixed::<8>()
    }

    /// Skips a value of a field this decoder does not know.
    pub(crate) fn skip(&mut self, wire_type: WireType) -> Result<(), ProtobufError> {
        match wire_type {
            WireType::Varint => self.varint().map(drop),
            WireType::Fixed64 => self.fixed::<8>().map(drop),
            WireType::Len => self.bytes().map(drop),
            WireType::Fixed32 => self.fixed::<4>().map(drop),
        }
    }
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(crate) fn put_key(out: &mut Vec<u8>, tag: u32, wire_type: WireType) {
    put_varint(out, (u64::from(tag) << 3) | wire_type.bits());
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    put_key(out, tag, WireType::Len);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut r = Reader::new(&out);
            assert_eq!(r.varint().unwrap(), value);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn truncated_and_overlong_varints_are_errors() {
        assert!(Reader::new(&[0x80]).varint().is_err());
        assert!(Reader::new(&[0xff; 11]).varint().is_err());
        assert!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .varint()
                .is_err()
        );
    }

    #[test]
    fn length_beyond_input_is_an_error() {
        let err = Reader::new(&[0x05, b'a']).bytes().unwrap_err();
        assert!(err.to_string().contains("exceeds"), "{err}");
    }

    #[test]
    fn keys_reject_field_zero_and_groups() {
        assert!(Reader::new(&[0x00]).key().is_err());
        assert!(Reader::new(&[0x0b]).key().is_err());
        assert_eq!(Reader::new(&[0x12]).key().unwrap(), (2, WireType::Len));
    }
}
