//! The push body format a sink was configured with: which encoder, and the headers that say
//! how the body is encoded.

use bytes::Bytes;
use logship_config::schema::{LokiCompression, LokiEncoding};

use super::batch::Stream;
use super::encode_json::JsonEncoder;
use super::encode_protobuf::ProtobufEncoder;

/// Why a batch could not be encoded. Only possible for absurd batch sizes (over 4 GiB).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The protobuf body is larger than snappy's block format can hold.
    #[error("batch of {0} bytes is too large for snappy")]
    TooLarge(usize),
    /// Snappy failed.
    #[error("snappy compression failed: {0}")]
    Snappy(String),
    /// Gzip failed.
    #[error("gzip compression failed: {0}")]
    Gzip(String),
}

/// The configured combination of encoding and compression; protobuf is always raw snappy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/x-protobuf`, raw (block) snappy.
    ProtobufSnappy,
    /// `application/json`, uncompressed.
    Json,
    /// `application/json` with `Content-Encoding: gzip`.
    JsonGzip,
}

/// An encoding and compression that Loki cannot decode together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("compression {compression:?} cannot be used with encoding {encoding:?}")]
pub struct UnsupportedFormat {
    /// The configured encoding.
    pub encoding: LokiEncoding,
    /// The configured compression.
    pub compression: LokiCompression,
}

impl BodyFormat {
    /// The format for a config's `encoding` and `compression`: protobuf takes only snappy
    /// (Loki decodes protobuf bodies as raw snappy, always), JSON takes gzip (its default)
    /// or none.
    pub fn from_config(
        encoding: LokiEncoding,
        compression: Option<LokiCompression>,
    ) -> Result<Self, UnsupportedFormat> {
        match (encoding, compression) {
            (LokiEncoding::Protobuf, None | Some(LokiCompression::Snappy)) => {
                Ok(Self::ProtobufSnappy)
            }
            (LokiEncoding::Json, None | Some(LokiCompression::Gzip)) => Ok(Self::JsonGzip),
            (LokiEncoding::Json, Some(LokiCompression::None)) => Ok(Self::Json),
            (encoding, Some(compression)) => Err(UnsupportedFormat {
                encoding,
                compression,
            }),
        }
    }

    /// The `Content-Type` header value.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::ProtobufSnappy => "application/x-protobuf",
            Self::Json | Self::JsonGzip => "application/json",
        }
    }

    /// The `Content-Encoding` header value, if any. Loki ignores `snappy` here (a protobuf body
    /// is snappy regardless), so none is sent for protobuf, as Promtail does.
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Self::JsonGzip => Some("gzip"),
            Self::ProtobufSnappy | Self::Json => None,
        }
    }

    /// A fresh encoder for this format.
    pub fn encoder(self) -> BodyEncoder {
        match self {
            Self::ProtobufSnappy => BodyEncoder::Protobuf(Box::default()),
            Self::Json => BodyEncoder::Json(JsonEncoder::new(false)),
            Self::JsonGzip => BodyEncoder::Json(JsonEncoder::new(true)),
        }
    }
}

/// An encoder for one [`BodyFormat`], keeping its buffers between batches. (The protobuf
/// encoder is boxed: snappy's hash table makes it 2 KiB.)
#[derive(Debug)]
pub enum BodyEncoder {
    /// Protobuf + snappy.
    Protobuf(Box<ProtobufEncoder>),
    /// JSON, maybe gzip.
    Json(JsonEncoder),
}

impl BodyEncoder {
    /// The request body for `streams`.
    pub fn encode(&mut self, streams: &[Stream]) -> Result<Bytes, EncodeError> {
        match self {
            Self::Protobuf(e) => e.encode(streams),
            Self::Json(e) => e.encode(streams),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_config() {
        use LokiCompression as C;
        use LokiEncoding as E;
        assert_eq!(
            BodyFormat::from_config(E::Protobuf, None),
            Ok(BodyFormat::ProtobufSnappy)
        );
        assert_eq!(
            BodyFormat::from_config(E::Protobuf, Some(C::Snappy)),
            Ok(BodyFormat::ProtobufSnappy)
        );
        assert_eq!(
            BodyFormat::from_config(E::Json, None),
            Ok(BodyFormat::JsonGzip)
        );
        assert_eq!(
            BodyFormat::from_config(E::Json, Some(C::None)),
            Ok(BodyFormat::Json)
        );
        assert!(BodyFormat::from_config(E::Protobuf, Some(C::Gzip)).is_err());
        assert!(BodyFormat::from_config(E::Protobuf, Some(C::None)).is_err());
        assert!(BodyFormat::from_config(E::Json, Some(C::Snappy)).is_err());
        assert_eq!(BodyFormat::JsonGzip.content_encoding(), Some("gzip"));
        assert_eq!(BodyFormat::ProtobufSnappy.content_encoding(), None);
    }
}
