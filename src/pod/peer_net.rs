//! Where a pod's names for the other apps lead: addresses of the pod's own loopback that no
//! app of the pod can take by accident. An app commonly listens on `0.0.0.0:8000` (the
//! course's `uvicorn --host 0.0.0.0`); had its peers' names led to 127.0.1.N:8000, daca's
//! listeners there would make that bind fail (a wildcard bind conflicts with every listening
//! socket of its port and family). So the names lead to IPv6 addresses of a prefix routed
//! to the pod's loopback (`local fd0d:daca::/64 dev lo`, one route, as a kubelet gives a pod
//! its Service range), where daca listens IPv6-only: an app's IPv4 wildcard never meets
//! them. Where the kernel has no IPv6, the names stay on 127.0.1.N and 127.0.2.N.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// The prefix routed to a pod's loopback (a unique local one: `fd`, then `0d:daca`).
const PREFIX: Ipv6Addr = Ipv6Addr::new(0xfd0d, 0xdaca, 0, 0, 0, 0, 0, 0);

/// The kernel's local routing table (`RT_TABLE_LOCAL`), where loopback routes live.
const LOCAL_TABLE: u8 = 255;

/// The loopback's interface index, the same in every network namespace.
const LOOPBACK: u32 = 1;

/// Whether the pods' names use IPv6: the kernel has it (`ipv6.disable=1` removes this file).
pub fn v6() -> bool {
    static V6: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V6.get_or_init(|| std::path::Path::new("/proc/net/if_inet6").exists())
}

/// The address of the `n`th peer of a pod: its app (`sidecar` false) or its sidecar.
pub fn peer_address(n: usize, sidecar: bool) -> IpAddr {
    let index = (n + 1).min(0xfffe) as u16;
    if v6() {
        let segments = PREFIX.segments();
        let kind = if sidecar { 2 } else { 1 };
        IpAddr::V6(Ipv6Addr::new(
            segments[0],
            segments[1],
            0,
            0,
            0,
            0,
            kind,
            index,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(
            127,
            if sidecar { 2 } else { 1 },
            0,
            index.min(254) as u8,
        ))
    }
}

/// Routes the prefix to the loopback of the network namespace this thread is in (its
/// loopback must be up). Needs CAP_NET_ADMIN there: daca has it over the pods it made, the
/// relay in a container pod is given it.
pub fn route_prefix() -> std::io::Result<()> {
    if !v6() {
        return Ok(());
    }
    let mut route = netlink_packet_route::route::RouteMessage::default();
    route.header.address_family = AddressFamily::Inet6;
    route.header.destination_prefix_length = 64;
    route.header.table = LOCAL_TABLE;
    route.header.protocol = RouteProtocol::Static;
    route.header.scope = RouteScope::Host;
    route.header.kind = RouteType::Local;
    route.attributes = vec![
        RouteAttribute::Destination(RouteAddress::Inet6(PREFIX)),
        RouteAttribute::Oif(LOOPBACK),
    ];
    let mut message = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::from(RouteNetlinkMessage::NewRoute(route)),
    );
    // Replace: a pod container restarted in the same namespace has it already.
    message.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    message.finalize();
    let mut request = vec![0; message.header.length as usize];
    message.serialize(&mut request);
    ask_kernel(&request)
}

/// Sends one rtnetlink request and reads its acknowledgement.
fn ask_kernel(request: &[u8]) -> std::io::Result<()> {
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    socket.send(request, 0)?;
    let (reply, _) = socket.recv_from_full()?;
    let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply)
        .map_err(|e| std::io::Error::other(format!("unreadable answer from the kernel: {e}")))?;
    match reply.payload {
        NetlinkPayload::Error(err) if err.code.is_some() => Err(err.to_io()),
        _ => Ok(()),
    }
}

/// A listener at `address` in the current network namespace: for a peer's IPv6 address,
/// IPv6-only (so it never meets an IPv4 wildcard) and free-bound (the address is routed to
/// the loopback, not assigned to it).
pub fn listen(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
        socket.set_freebind_v6(true)?;
    }
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_and_their_sidecars_have_addresses_of_their_own() {
        let (app, sidecar) = (peer_address(0, false), peer_address(0, true));
        assert_ne!(app, sidecar);
        assert_ne!(peer_address(1, false), app);
        if v6() {
            assert_eq!(app.to_string(), "fd0d:daca::1:1");
            assert_eq!(sidecar.to_string(), "fd0d:daca::2:1");
        } else {
            assert_eq!(app.to_string(), "127.1.0.1");
        }
    }
}
