//! The row count of a parquet file, read from its footer.
//!
//! A parquet file ends with its `FileMetaData` (Thrift compact protocol), a
//! 4-byte little-endian length and the magic `PAR1`. The row count is field 3
//! of that struct. Reading it takes a small Thrift skipper instead of the
//! `parquet` crate, which would more than double this crate's build time to
//! read one integer.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Rows in the parquet file at `path`, or `None` when it is not a readable
/// plain parquet file (too short, wrong magic, encrypted footer, bad Thrift).
pub fn row_count(path: &Path) -> Option<u64> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len < 12 {
        return None;
    }
    let mut tail = [0u8; 8];
    file.seek(SeekFrom::End(-8)).ok()?;
    file.read_exact(&mut tail).ok()?;
    if &tail[4..] != b"PAR1" {
        return None;
    }
    let meta_len = u64::from(u32::from_le_bytes(tail[..4].try_into().ok()?));
    if meta_len + 12 > len {
        return None;
    }
    let mut meta = vec![0u8; meta_len as usize];
    file.seek(SeekFrom::Start(len - 8 - meta_len)).ok()?;
    file.read_exact(&mut meta).ok()?;
    num_rows_from_metadata(&meta)
}

/// Field 3 (`num_rows`, i64) of a Thrift-compact `FileMetaData`.
pub fn num_rows_from_metadata(meta: &[u8]) -> Option<u64> {
    let mut r = Reader { buf: meta, pos: 0 };
    let mut last_id: i16 = 0;
    loop {
        let header = r.byte()?;
        let kind = header & 0x0f;
        if kind == STOP {
            return None;
        }
        let id = r.field_id(header, last_id)?;
        last_id = id;
        if id == 3 && kind == I64 {
            return u64::try_from(r.zigzag()?).ok();
        }
        r.skip(kind, 0)?;
    }
}

const STOP: u8 = 0;
const BOOL_TRUE: u8 = 1;
const BOOL_FALSE: u8 = 2;
const BYTE: u8 = 3;
const I16: u8 = 4;
const I32: u8 = 5;
const I64: u8 = 6;
const DOUBLE: u8 = 7;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const SET: u8 = 10;
const MAP: u8 = 11;
const STRUCT: u8 = 12;
const UUID: u8 = 13;

/// Nesting deeper than this is refused rather than risking the stack on a
/// hostile footer.
const MAX_DEPTH: u32 = 64;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn advance(&mut self, n: u64) -> Option<()> {
        let n = usize::try_from(n).ok()?;
        let end = self.pos.checked_add(n)?;
        if end > self.buf.len() {
            return None;
        }
        self.pos = end;
        Some(())
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn zigzag(&mut self) -> Option<i64> {
        let v = self.varint()?;
        Some((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    /// The field id: a delta from the previous one in the header's high
    /// nibble, or a full zigzag i16 after it when the delta is 0.
    fn field_id(&mut self, header: u8, last: i16) -> Option<i16> {
        let delta = header >> 4;
        if delta == 0 {
            i16::try_from(self.zigzag()?).ok()
        } else {
            last.checked_add(i16::from(delta))
        }
    }

    /// Skips one value of type `kind`. In a field, booleans live in the
    /// header; `in_collection` values (list elements) take one byte.
    fn skip_value(&mut self, kind: u8, depth: u32, in_collection: bool) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match kind {
            BOOL_TRUE | BOOL_FALSE => {
                if in_collection {
                    self.byte()?;
                }
                Some(())
            }
            BYTE => self.advance(1),
            I16 | I32 | I64 => self.varint().map(|_| ()),
            DOUBLE => self.advance(8),
            BINARY => {
                let n = self.varint()?;
                self.advance(n)
            }
            LIST | SET => {
                let header = self.byte()?;
                let elem = header & 0x0f;
                let size = match header >> 4 {
                    15 => self.varint()?,
                    n => u64::from(n),
                };
                for _ in 0..size {
                    self.skip_value(elem, depth + 1, true)?;
                }
                Some(())
            }
            MAP => {
                let size = self.varint()?;
                if size == 0 {
                    return Some(());
                }
                let types = self.byte()?;
                for _ in 0..size {
                    self.skip_value(types >> 4, depth + 1, true)?;
                    self.skip_value(types & 0x0f, depth + 1, true)?;
                }
                Some(())
            }
            STRUCT => {
                let mut last = 0i16;
                loop {
                    let header = self.byte()?;
                    let t = header & 0x0f;
                    if t == STOP {
                        return Some(());
                    }
                    last = self.field_id(header, last)?;
                    self.skip_value(t, depth + 1, false)?;
                }
            }
            UUID => self.advance(16),
            _ => None,
        }
    }

    fn skip(&mut self, kind: u8, depth: u32) -> Option<()> {
        self.skip_value(kind, depth, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// version=1, schema=[{name:"a"}], num_rows=100, STOP
    const META: &[u8] = &[
        0x15, 0x02, // field 1, i32, zigzag(1)
        0x19, 0x1c, // field 2, list; 1 element of struct
        0x48, 0x01, b'a', 0x00, // struct { field 4 binary "a" } STOP
        0x16, 0xc8, 0x01, // field 3, i64, zigzag(100) = 200
        0x00,
    ];

    #[test]
    fn reads_num_rows_after_skipping_the_schema() {
        assert_eq!(num_rows_from_metadata(META), Some(100));
    }

    #[test]
    fn long_form_field_ids_and_bools_are_skipped() {
        // field 1 bool true (in the header); long form field 7 binary "xy";
        // field 8 a list of 2 bools with only one present: truncated, None.
        let meta = [0x11, 0x08, 0x0e, 0x02, b'x', b'y', 0x19, 0x21, 0x01];
        assert_eq!(num_rows_from_metadata(&meta), None);
        // the same with both bools, then long form field 3 (zigzag 6), i64 7
        let meta = [
            0x11, 0x08, 0x0e, 0x02, b'x', b'y', 0x19, 0x21, 0x01, 0x02, 0x06, 0x06, 0x0e, 0x00,
        ];
        assert_eq!(num_rows_from_metadata(&meta), Some(7));
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        assert_eq!(num_rows_from_metadata(&[]), None);
        assert_eq!(num_rows_from_metadata(&[0x00]), None);
        assert_eq!(num_rows_from_metadata(&[0xff; 64]), None);
        assert_eq!(num_rows_from_metadata(&[0x1c; 200]), None);
        // negative row count
        assert_eq!(num_rows_from_metadata(&[0x36, 0x01, 0x00]), None);
    }

    #[test]
    fn a_file_that_is_not_parquet_has_no_row_count() {
        let dir = std::env::temp_dir().join(format!("agnes-footer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.parquet");
        std::fs::write(&path, b"<html>not parquet</html>").unwrap();
        assert_eq!(row_count(&path), None);
        let mut fake = b"PAR1".to_vec();
        fake.extend_from_slice(META);
        fake.extend_from_slice(&(META.len() as u32).to_le_bytes());
        fake.extend_from_slice(b"PAR1");
        std::fs::write(&path, &fake).unwrap();
        assert_eq!(row_count(&path), Some(100));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
