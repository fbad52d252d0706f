//! The one place records are turned into bytes: a format-version byte, then bincode
//! (standard config) of the serde form. Changing the encoding means a new version byte
//! here, and old records stay readable.

use serde::{Serialize, de::DeserializeOwned};

const FORMAT_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("record has unknown format version {0}")]
    UnknownVersion(u8),
    #[error("record is empty")]
    Empty,
    #[error("record is corrupt: {0}")]
    Corrupt(#[from] bincode::error::DecodeError),
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_V1];
    bincode::serde::encode_into_std_write(value, &mut out, bincode::config::standard())
        .expect("encoding into a Vec cannot fail");
    out
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&FORMAT_V1, rest)) => {
            let (value, _) = bincode::serde::decode_from_slice(rest, bincode::config::standard())?;
            Ok(value)
        }
        Some((&version, _)) => Err(CodecError::UnknownVersion(version)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_unknown_versions() {
        let value = (42u64, Some("x".to_string()), vec![1u8, 2]);
        let bytes = encode(&value);
        assert_eq!(bytes[0], FORMAT_V1);
        assert_eq!(
            decode::<(u64, Option<String>, Vec<u8>)>(&bytes).unwrap(),
            value
        );
        let mut future = bytes.clone();
        future[0] = 9;
        assert!(matches!(
            decode::<(u64, Option<String>, Vec<u8>)>(&future),
            Err(CodecError::UnknownVersion(9))
        ));
        assert!(matches!(decode::<u64>(&[]), Err(CodecError::Empty)));
    }
}
