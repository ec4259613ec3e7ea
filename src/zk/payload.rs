//! Dremio's service discovery payload: the protobuf `DremioServiceInstance` it writes under
//! `<root>/{master,coordinator,executor}/<uuid>` (protocol/src/main/protobuf/Coordination.proto).
//! Hand-written prost messages: only the fields doctor reads; prost skips the others.

use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct DremioServiceInstance {
    #[prost(string, optional, tag = "1")]
    pub id: Option<String>,
    #[prost(int64, optional, tag = "2")]
    pub registration_time_utc: Option<i64>,
    #[prost(message, optional, tag = "3")]
    pub endpoint: Option<NodeEndpoint>,
    #[prost(string, optional, tag = "4")]
    pub name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NodeEndpoint {
    #[prost(string, optional, tag = "1")]
    pub address: Option<String>,
    #[prost(int32, optional, tag = "2")]
    pub user_port: Option<i32>,
    #[prost(int32, optional, tag = "3")]
    pub fabric_port: Option<i32>,
    #[prost(int64, optional, tag = "101")]
    pub start_time: Option<i64>,
    #[prost(string, optional, tag = "105")]
    pub node_tag: Option<String>,
    #[prost(int32, optional, tag = "106")]
    pub conduit_port: Option<i32>,
    #[prost(string, optional, tag = "203")]
    pub dremio_version: Option<String>,
}

pub fn decode(data: &[u8]) -> Result<DremioServiceInstance, prost::DecodeError> {
    DremioServiceInstance::decode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload as protoc encodes it, bytes written out by hand, with the Roles message (5)
    /// that doctor does not model: decoding must skip it.
    #[test]
    fn decodes_dremio_bytes_and_skips_unmodelled_fields() {
        let mut b = vec![0x0a, 4];
        b.extend_from_slice(b"u-01");
        b.extend_from_slice(&[0x10, 0x2a]); // registration_time_UTC = 42
        let mut ep = vec![0x0a, 9];
        ep.extend_from_slice(b"10.0.0.17");
        ep.extend_from_slice(&[0x10, 0x8f, 0xf3, 0x01]); // user_port = 31_119
        ep.extend_from_slice(&[0x2a, 2, 0x18, 1]); // roles { master: true }
        ep.extend_from_slice(&[0xda, 0x0c, 6]); // field 203, length-delimited
        ep.extend_from_slice(b"25.2.0");
        b.push(0x1a);
        b.push(ep.len() as u8);
        b.extend_from_slice(&ep);
        let d = decode(&b).unwrap();
        assert_eq!(d.id.as_deref(), Some("u-01"));
        assert_eq!(d.registration_time_utc, Some(42));
        let e = d.endpoint.unwrap();
        assert_eq!(e.address.as_deref(), Some("10.0.0.17"));
        assert_eq!(e.user_port, Some(31_119));
        assert_eq!(e.dremio_version.as_deref(), Some("25.2.0"));
    }

    #[test]
    fn garbage_is_a_decode_error() {
        assert!(decode(&[0x1a, 0x7f, 0x01]).is_err());
        assert!(decode(b"{\"json\": true}").is_err());
    }
}
