//! The payload format the runtime uses for commands, events, states and replies.

use aether_core::{Codec, CodecError, JsonCodec};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The payload format of a runtime. Every node that shares a store must use the same one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PayloadCodec {
    /// JSON: readable with any tool, tolerant of added optional fields. The default.
    #[default]
    Json,
    /// MessagePack with named fields: smaller and faster than JSON.
    #[cfg(feature = "msgpack")]
    MsgPack,
}

impl Codec for PayloadCodec {
    fn name(&self) -> &'static str {
        match self {
            PayloadCodec::Json => JsonCodec.name(),
            #[cfg(feature = "msgpack")]
            PayloadCodec::MsgPack => aether_core::MsgPackCodec.name(),
        }
    }

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        match self {
            PayloadCodec::Json => JsonCodec.encode(value),
            #[cfg(feature = "msgpack")]
            PayloadCodec::MsgPack => aether_core::MsgPackCodec.encode(value),
        }
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        match self {
            PayloadCodec::Json => JsonCodec.decode(bytes),
            #[cfg(feature = "msgpack")]
            PayloadCodec::MsgPack => aether_core::MsgPackCodec.decode(bytes),
        }
    }
}
