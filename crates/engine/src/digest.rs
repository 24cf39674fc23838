//! MD5, the manifest's content hash. One place names the implementation: the
//! `md5` crate hashes about 40% faster than `md-5` here (502 against 350 MB/s
//! on this machine), and hashing is the CPU cost of a cold sync.

/// A running MD5.
#[derive(Clone)]
pub struct Md5(md5::Context);

impl Default for Md5 {
    fn default() -> Self {
        Md5::new()
    }
}

impl Md5 {
    pub fn new() -> Md5 {
        Md5(md5::Context::new())
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.consume(bytes);
    }

    /// The digest as 32 lowercase hex characters, as the manifest writes it.
    pub fn hex(self) -> String {
        format!("{:x}", self.0.finalize())
    }
}

/// MD5 of `bytes`, lowercase hex.
pub fn md5_hex(bytes: &[u8]) -> String {
    let mut h = Md5::new();
    h.update(bytes);
    h.hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        let mut h = Md5::new();
        h.update(b"The quick brown fox ");
        h.update(b"jumps over the lazy dog");
        assert_eq!(h.hex(), "9e107d9d372bb6826bd81d3542a419d6");
    }
}
