//! Integration tests of the federation crate: the wire format against golden text and the SDK's
//! field order, and the connectors against real servers.

mod wire;
