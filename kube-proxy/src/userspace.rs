//! The userspace mode, for hosts without a working packet filter: kube-proxy binds every
//! service IP on a local interface (a `kube-proxy0` link: a dummy, or a bridge without ports
//! where the kernel has no dummy driver; failing both, labelled IPv4 addresses on `lo`, which
//! cannot mark IPv6 ones as kube-proxy's), listens on each service port and node port itself,
//! and relays TCP and UDP to endpoints round-robin, retrying the next endpoint when one does not
//! accept. A port with no endpoints has no listener, so the kernel refuses connections at once.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, RwLock,
    },
    time::{Duration, Instant},
};

use tokio::{
    net::{TcpListener, TcpStream, UdpSocket},
    task::JoinHandle,
};

use crate::{
    config::ProxyConfig,
    exec,
    model::{Endpoint, Protocol, ServicePortMap},
    net::{self, Cidr},
    proxier::{self, ProxyError, SyncReport},
    tracker::Changes,
};

/// The link service IPs are bound to.
pub const LINK: &str = "kube-proxy0";
/// The label of service IPs bound to `lo` when no `kube-proxy0` link can be made.
pub const LO_LABEL: &str = "lo:kube-proxy";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const UDP_IDLE: Duration = Duration::from_secs(30);
/// How many endpoints one connection tries before giving up.
const MAX_ATTEMPTS: usize = 3;

/// The endpoints one listener forwards to, with round-robin and ClientIP affinity state.
struct Pool {
    endpoints: RwLock<Vec<SocketAddr>>,
    next: AtomicUsize,
    affinity: Option<Duration>,
    sticky: Mutex<HashMap<IpAddr, (SocketAddr, Instant)>>,
    /// loadBalancerSourceRanges of a load-balancer IP listener (empty: every client).
    allowed: RwLock<Vec<Cidr>>,
}

impl Pool {
    fn new(
        endpoints: Vec<SocketAddr>,
        affinity: Option<Duration>,
        allowed: Vec<Cidr>,
    ) -> Arc<Pool> {
        Arc::new(Pool {
            endpoints: RwLock::new(endpoints),
            next: AtomicUsize::new(0),
            affinity,
            sticky: Mutex::new(HashMap::new()),
            allowed: RwLock::new(allowed),
        })
    }

    fn set(&self, endpoints: Vec<SocketAddr>, allowed: Vec<Cidr>) {
        if let Ok(mut g) = self.endpoints.write() {
            *g = endpoints;
        }
        if let Ok(mut g) = self.allowed.write() {
            *g = allowed;
        }
    }

    /// Whether `client` may use this listener.
    fn admits(&self, client: IpAddr) -> bool {
        self.allowed
            .read()
            .is_ok_and(|a| a.is_empty() || a.iter().any(|c| c.contains(&client)))
    }

    /// Endpoints to try, in order: the client's pinned one first, then round-robin.
    fn candidates(&self, client: IpAddr) -> Vec<SocketAddr> {
        let eps = self.endpoints.read().map(|g| g.clone()).unwrap_or_default();
        if eps.is_empty() {
            return eps;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % eps.len();
        let mut order: Vec<SocketAddr> = eps
            .iter()
            .cycle()
            .skip(start)
            .take(eps.len())
            .copied()
            .collect();
        if let Some(ttl) = self.affinity {
            if let Ok(sticky) = self.sticky.lock() {
                if let Some((ep, at)) = sticky.get(&client) {
                    if at.elapsed() < ttl && eps.contains(ep) {
                        order.retain(|e| e != ep);
                        order.insert(0, *ep);
                    }
                }
            }
        }
        order.truncate(MAX_ATTEMPTS);
        order
    }

    fn contains(&self, ep: SocketAddr) -> bool {
        self.endpoints.read().is_ok_and(|g| g.contains(&ep))
    }

    fn used(&self, client: IpAddr, ep: SocketAddr) {
        if self.affinity.is_some() {
            if let Ok(mut sticky) = self.sticky.lock() {
                sticky.insert(client, (ep, Instant::now()));
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ListenKey {
    addr: SocketAddr,
    protocol: Protocol,
}

/// What one listener should forward: endpoints, affinity, allowed sources, service name.
type Wanted = (Vec<SocketAddr>, Option<Duration>, Vec<Cidr>, String);

struct Listener {
    pool: Arc<Pool>,
    task: JoinHandle<()>,
}

/// Where service IPs live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interface {
    /// The `kube-proxy0` link.
    Link,
    Loopback,
}

/// The userspace proxier.
pub struct UserspaceProxier {
    cfg: Arc<ProxyConfig>,
    ports: ServicePortMap,
    listeners: HashMap<ListenKey, Listener>,
    iface: Option<Interface>,
}

impl UserspaceProxier {
    pub fn new(cfg: Arc<ProxyConfig>) -> UserspaceProxier {
        UserspaceProxier {
            cfg,
            ports: ServicePortMap::new(),
            listeners: HashMap::new(),
            iface: None,
        }
    }

    pub fn ports(&self) -> &ServicePortMap {
        &self.ports
    }

    async fn interface(&mut self) -> Result<Interface, ProxyError> {
        if let Some(i) = self.iface {
            return Ok(i);
        }
        let iface = if exec::works("ip", &["link", "show", LINK], None).await
            || exec::works("ip", &["link", "add", LINK, "type", "dummy"], None).await
        {
            exec::run("ip", &["link", "set", LINK, "up"], None).await?;
            Interface::Link
        } else if exec::works("ip", &["link", "add", LINK, "type", "bridge"], None).await {
            tracing::info!(
                "no dummy interface driver; binding service IPs to a bridge without ports"
            );
            exec::run("ip", &["link", "set", LINK, "up"], None).await?;
            Interface::Link
        } else {
            tracing::info!("no dummy or bridge interface driver; binding service IPs to lo");
            Interface::Loopback
        };
        self.iface = Some(iface);
        Ok(iface)
    }

    async fn bound_ips(iface: Interface) -> Result<BTreeSet<IpAddr>, ProxyError> {
        let out = match iface {
            Interface::Link => {
                // Only service IPs: the link's own link-local address is not kube-proxy's.
                exec::run(
                    "ip",
                    &["-o", "addr", "show", "dev", LINK, "scope", "global"],
                    None,
                )
                .await?
            }
            Interface::Loopback => {
                exec::run("ip", &["-o", "-4", "addr", "show", "label", LO_LABEL], None).await?
            }
        };
        Ok(net::parse_ip_addr_output(&out).into_iter().collect())
    }

    async fn sync_addresses(&mut self, wanted: &BTreeSet<IpAddr>) -> Result<(), ProxyError> {
        let iface = self.interface().await?;
        let have = Self::bound_ips(iface).await?;
        for ip in wanted.difference(&have) {
            let cidr = format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 });
            let result = match (iface, ip) {
                (Interface::Link, IpAddr::V4(_)) => {
                    exec::run("ip", &["addr", "add", &cidr, "dev", LINK], None).await
                }
                // Without duplicate address detection the address is usable at once instead of
                // staying tentative (and unbindable) for a second or more.
                (Interface::Link, IpAddr::V6(_)) => {
                    exec::run("ip", &["addr", "add", &cidr, "dev", LINK, "nodad"], None).await
                }
                (Interface::Loopback, IpAddr::V4(_)) => {
                    exec::run(
                        "ip",
                        &["addr", "add", &cidr, "dev", "lo", "label", LO_LABEL],
                        None,
                    )
                    .await
                }
                (Interface::Loopback, IpAddr::V6(_)) => {
                    tracing::warn!(%ip, "IPv6 service IPs need the dummy interface driver");
                    continue;
                }
            };
            if let Err(err) = result {
                tracing::warn!(%err, %ip, "binding a service IP");
            }
        }
        for ip in have.difference(wanted) {
            let cidr = format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 });
            let dev = if iface == Interface::Link { LINK } else { "lo" };
            if let Err(err) = exec::run("ip", &["addr", "del", &cidr, "dev", dev], None).await {
                tracing::warn!(%err, %ip, "unbinding a service IP");
            }
        }
        Ok(())
    }

    pub async fn sync(&mut self, changes: &Changes, full: bool) -> Result<SyncReport, ProxyError> {
        let changed = proxier::apply_changes(&mut self.ports, changes);
        let node_ips: Vec<IpAddr> = if self.cfg.node_port_cidrs.is_empty() {
            vec![
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            ]
        } else {
            net::node_addresses(&self.cfg.node_port_cidrs).await?
        };
        let mut service_ips = BTreeSet::new();
        let mut wanted: BTreeMap<ListenKey, Wanted> = BTreeMap::new();
        let addrs = |eps: &[Endpoint], v4: bool| -> Vec<SocketAddr> {
            eps.iter()
                .filter(|e| e.ip.is_ipv4() == v4)
                .map(|e| SocketAddr::new(e.ip, e.port))
                .collect()
        };
        for sp in self.ports.values() {
            let affinity = sp
                .affinity_timeout
                .map(|t| Duration::from_secs(u64::from(t)));
            let mut add = |ip: IpAddr, port: u16, eps: &[Endpoint], allowed: &[Cidr]| {
                let list = addrs(eps, ip.is_ipv4());
                if !list.is_empty() {
                    wanted.insert(
                        ListenKey {
                            addr: SocketAddr::new(ip, port),
                            protocol: sp.name.protocol,
                        },
                        (list, affinity, allowed.to_vec(), sp.name.to_string()),
                    );
                }
            };
            for ip in &sp.cluster_ips {
                service_ips.insert(*ip);
                add(*ip, sp.port, &sp.cluster_endpoints, &[]);
            }
            for ip in &sp.external_ips {
                service_ips.insert(*ip);
                add(*ip, sp.port, &sp.external_endpoints, &[]);
            }
            for ip in &sp.load_balancer_ips {
                service_ips.insert(*ip);
                add(*ip, sp.port, &sp.external_endpoints, &sp.source_ranges);
            }
            if let Some(np) = sp.node_port {
                for ip in &node_ips {
                    add(*ip, np, &sp.external_endpoints, &[]);
                }
            }
        }
        self.sync_addresses(&service_ips).await?;
        self.listeners.retain(|key, l| {
            let keep = wanted.contains_key(key);
            if !keep {
                l.task.abort();
            }
            keep
        });
        for (key, (eps, affinity, allowed, name)) in wanted {
            if let Some(l) = self.listeners.get(&key) {
                l.pool.set(eps, allowed);
                continue;
            }
            let pool = Pool::new(eps, affinity, allowed);
            let task = match key.protocol {
                Protocol::Tcp => match listen_tcp(key.addr) {
                    Ok(listener) => tokio::spawn(serve_tcp(listener, pool.clone(), name)),
                    Err(err) => {
                        tracing::warn!(%err, addr = %key.addr, service = %name, "cannot listen for a service port");
                        continue;
                    }
                },
                Protocol::Udp => match bind_udp(key.addr) {
                    Ok(socket) => tokio::spawn(serve_udp(Arc::new(socket), pool.clone(), name)),
                    Err(err) => {
                        tracing::warn!(%err, addr = %key.addr, service = %name, "cannot listen for a service port");
                        continue;
                    }
                },
                Protocol::Sctp => {
                    tracing::warn!(service = %name, "SCTP is not proxied in userspace mode");
                    continue;
                }
            };
            self.listeners.insert(key, Listener { pool, task });
        }
        Ok(SyncReport {
            full,
            rewritten: changed.len(),
            rules: vec![("listeners", self.listeners.len())],
            stale_udp: Vec::new(),
        })
    }
}

/// A non-blocking socket bound to `addr`. IPv6 sockets take IPv6 traffic only, so `[::]:port`
/// sits beside `0.0.0.0:port` (a dual-stack socket would collide with it, and would hand IPv4
/// clients to IPv6 endpoints).
fn bound_socket(
    addr: SocketAddr,
    ty: socket2::Type,
    reuse: bool,
) -> std::io::Result<socket2::Socket> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), ty, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(reuse)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

fn listen_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = bound_socket(addr, socket2::Type::STREAM, true)?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    UdpSocket::from_std(bound_socket(addr, socket2::Type::DGRAM, false)?.into())
}

impl Drop for UserspaceProxier {
    fn drop(&mut self) {
        for l in self.listeners.values() {
            l.task.abort();
        }
    }
}

async fn serve_tcp(listener: TcpListener, pool: Arc<Pool>, service: String) {
    loop {
        let (mut inbound, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(err) => {
                tracing::warn!(%err, %service, "accepting a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if !pool.admits(peer.ip()) {
            tracing::debug!(%service, client = %peer, "client outside loadBalancerSourceRanges");
            continue;
        }
        let pool = pool.clone();
        let service = service.clone();
        tokio::spawn(async move {
            for ep in pool.candidates(peer.ip()) {
                match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(ep)).await {
                    Ok(Ok(mut outbound)) => {
                        pool.used(peer.ip(), ep);
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                    Ok(Err(err)) => {
                        tracing::debug!(%err, %ep, %service, "endpoint refused; trying the next")
                    }
                    Err(_) => tracing::debug!(%ep, %service, "endpoint timed out; trying the next"),
                }
            }
            tracing::info!(%service, client = %peer, "no endpoint accepted the connection");
        });
    }
}

/// One client's UDP flow: the endpoint it was sent to and the socket relaying replies.
struct Session {
    endpoint: SocketAddr,
    upstream: Arc<UdpSocket>,
    relay: JoinHandle<()>,
}

type Sessions = Arc<Mutex<HashMap<SocketAddr, Session>>>;

/// Ends every relay when the listener goes, so none keeps its port bound.
struct AbortRelays(Sessions);

impl Drop for AbortRelays {
    fn drop(&mut self) {
        if let Ok(s) = self.0.lock() {
            for sess in s.values() {
                sess.relay.abort();
            }
        }
    }
}

async fn serve_udp(socket: Arc<UdpSocket>, pool: Arc<Pool>, service: String) {
    let sessions: Sessions = Arc::default();
    let _abort_relays = AbortRelays(sessions.clone());
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, client) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(err) => {
                tracing::debug!(%err, %service, "receiving a datagram");
                continue;
            }
        };
        if !pool.admits(client.ip()) {
            continue;
        }
        // A flow keeps its endpoint only while that endpoint is still in the pool.
        let existing = sessions.lock().ok().and_then(|s| {
            s.get(&client)
                .filter(|sess| pool.contains(sess.endpoint))
                .map(|sess| sess.upstream.clone())
        });
        let upstream = match existing {
            Some(u) => u,
            None => {
                let Some((endpoint, upstream)) = connect_udp(&pool, client.ip()).await else {
                    continue;
                };
                let relay = tokio::spawn(relay_replies(
                    socket.clone(),
                    upstream.clone(),
                    client,
                    endpoint,
                    sessions.clone(),
                ));
                if let Ok(mut s) = sessions.lock() {
                    let fresh = Session {
                        endpoint,
                        upstream: upstream.clone(),
                        relay,
                    };
                    if let Some(stale) = s.insert(client, fresh) {
                        stale.relay.abort();
                    }
                }
                upstream
            }
        };
        if let Err(err) = upstream.send(&buf[..n]).await {
            tracing::debug!(%err, %service, "forwarding a datagram");
        }
    }
}

/// A socket connected to the first endpoint that takes one.
async fn connect_udp(pool: &Pool, client: IpAddr) -> Option<(SocketAddr, Arc<UdpSocket>)> {
    for ep in pool.candidates(client) {
        let local: SocketAddr = if ep.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        if let Ok(u) = UdpSocket::bind(local).await {
            if u.connect(ep).await.is_ok() {
                pool.used(client, ep);
                return Some((ep, Arc::new(u)));
            }
        }
    }
    None
}

/// Sends the endpoint's replies back to the client until the session idles out.
async fn relay_replies(
    listener: Arc<UdpSocket>,
    upstream: Arc<UdpSocket>,
    client: SocketAddr,
    endpoint: SocketAddr,
    sessions: Sessions,
) {
    let mut buf = vec![0u8; 65535];
    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, upstream.recv(&mut buf)).await {
        if listener.send_to(&buf[..n], client).await.is_err() {
            break;
        }
    }
    if let Ok(mut s) = sessions.lock() {
        if s.get(&client).is_some_and(|sess| sess.endpoint == endpoint) {
            s.remove(&client);
        }
    }
}

/// Removes the dummy interface and any service IPs bound to `lo`.
pub async fn cleanup() -> Result<(), ProxyError> {
    if exec::works("ip", &["link", "show", LINK], None).await {
        exec::run("ip", &["link", "del", LINK], None).await?;
    }
    let out = exec::run("ip", &["-o", "-4", "addr", "show", "label", LO_LABEL], None).await?;
    for ip in net::parse_ip_addr_output(&out) {
        exec::run(
            "ip",
            &["addr", "del", &format!("{ip}/32"), "dev", "lo"],
            None,
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ipv4_and_ipv6_wildcards_share_a_port() {
        let v4 = listen_tcp("0.0.0.0:0".parse().unwrap()).unwrap();
        let port = v4.local_addr().unwrap().port();
        let v6 = listen_tcp(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port)).unwrap();
        assert_eq!(v6.local_addr().unwrap().port(), port);
        let u4 = bind_udp("0.0.0.0:0".parse().unwrap()).unwrap();
        let port = u4.local_addr().unwrap().port();
        bind_udp(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port)).unwrap();
        assert!(bind_udp(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)).is_err());
    }

    #[test]
    fn round_robin_and_affinity() {
        let a: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let client: IpAddr = "10.99.0.2".parse().unwrap();
        let pool = Pool::new(vec![a, b], None, vec![]);
        let first = pool.candidates(client)[0];
        let second = pool.candidates(client)[0];
        assert_ne!(first, second);
        let sticky = Pool::new(vec![a, b], Some(Duration::from_secs(60)), vec![]);
        let pinned = sticky.candidates(client)[0];
        sticky.used(client, pinned);
        for _ in 0..5 {
            assert_eq!(sticky.candidates(client)[0], pinned);
        }
        assert!(pool.admits(client));
        pool.set(vec![a, b], vec!["192.0.2.0/24".parse().unwrap()]);
        assert!(!pool.admits(client));
        assert!(pool.admits("192.0.2.7".parse().unwrap()));
    }
}
