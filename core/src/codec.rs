//! Serde codecs that turn commands, events and states into payload bytes and back.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A failure to encode or decode a value.
#[derive(Debug, thiserror::Error)]
#[error("{codec} could not {operation} {type_name}")]
pub struct CodecError {
    /// The codec's name.
    pub codec: &'static str,
    /// `encode` or `decode`.
    pub operation: &'static str,
    /// The Rust type involved.
    pub type_name: &'static str,
    /// The serializer's error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

/// Turns values into bytes and back. Implementations are cheap to clone and share.
pub trait Codec: Clone + Send + Sync + 'static {
    /// Short name of the format, such as `json`.
    fn name(&self) -> &'static str;

    /// Encodes `value`.
    ///
    /// # Errors
    ///
    /// [`CodecError`] when the serializer rejects the value.
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError>;

    /// Decodes a `T` from `bytes`.
    ///
    /// # Errors
    ///
    /// [`CodecError`] when the bytes are not a valid `T` in this format.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError>;
}

/// JSON through `serde_json`: readable, and tolerant of added optional fields.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonCodec;

impl Codec for JsonCodec {
    fn name(&self) -> &'static str {
        "json"
    }

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(|err| CodecError {
            codec: "json",
            operation: "encode",
            type_name: std::any::type_name::<T>(),
            source: Box::new(err),
        })
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|err| CodecError {
            codec: "json",
            operation: "decode",
            type_name: std::any::type_name::<T>(),
            source: Box::new(err),
        })
    }
}

/// MessagePack through `rmp-serde`, with named fields so that structs can gain optional fields.
/// Smaller and faster than JSON; self-describing, so internally tagged enums work.
#[cfg(feature = "msgpack")]
#[derive(Clone, Copy, Debug, Default)]
pub struct MsgPackCodec;

#[cfg(feature = "msgpack")]
impl Codec for MsgPackCodec {
    fn name(&self) -> &'static str {
        "msgpack"
    }

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        rmp_serde::to_vec_named(value).map_err(|err| CodecError {
            codec: "msgpack",
            operation: "encode",
            type_name: std::any::type_name::<T>(),
            source: Box::new(err),
        })
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        rmp_serde::from_slice(bytes).map_err(|err| CodecError {
            codec: "msgpack",
            operation: "decode",
            type_name: std::any::type_name::<T>(),
            source: Box::new(err),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type")]
    enum Event {
        Added { amount: i64, note: String },
        Cleared,
    }

    fn round_trip<C: Codec>(codec: C) {
        let events = vec![
            Event::Added {
                amount: -3,
                note: "\0\u{feff}😀".into(),
            },
            Event::Cleared,
        ];
        let bytes = codec.encode(&events).unwrap();
        let back: Vec<Event> = codec.decode(&bytes).unwrap();
        assert_eq!(back, events);
    }

    #[test]
    fn json_round_trip() {
        round_trip(JsonCodec);
    }

    #[cfg(feature = "msgpack")]
    #[test]
    fn msgpack_round_trip() {
        round_trip(MsgPackCodec);
    }

    #[test]
    fn decode_error_names_type() {
        let err = JsonCodec.decode::<Event>(b"{not json").unwrap_err();
        assert!(err.to_string().contains("could not decode"), "{err}");
        assert!(err.to_string().contains("Event"), "{err}");
    }
}
