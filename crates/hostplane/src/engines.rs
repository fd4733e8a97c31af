//! The role engines this build plugs into the agent's supervisor. Roles without an
//! engine yet keep the agent's `NotBuilt` placeholder.
//!
//! DNS: the authoritative engine of `role-dns` on the server's own address, port 53
//! (10053 when the process may not bind privileged ports, like `up`'s port map). Until
//! zone transfers land (issue 4), every DNS server — primary or secondary — serves the
//! zone content the controller computed for it.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use agent::supervisor::{BoxFuture, EngineContext, EngineError, EngineRegistry, RoleEngine};
use proto::agent_v1::{EngineHealth, EngineState, RoleConfig, ZoneContent};
use role_dns::{RecordLine, ZoneData, ZoneSet};
use tokio::sync::watch;

/// The registry `hostplane agent` runs with.
pub fn registry() -> EngineRegistry {
    let mut reg = EngineRegistry::new();
    reg.register("dns", |ctx| {
        Ok(Box::new(DnsEngine::start(ctx)?) as Box<dyn RoleEngine>)
    });
    reg.register("web", role_web::start_engine);
    reg.register("mail", role_mail::start_engine);
    reg
}

/// The DNS role engine: sockets bound at start, zones swapped on every apply.
struct DnsEngine {
    zones: watch::Sender<Arc<ZoneSet>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    addr: SocketAddr,
    status: Arc<Mutex<(EngineState, String)>>,
}

/// Bind UDP and TCP on the same port: 53, or 10053 without the right to bind it.
fn bind(ip: IpAddr) -> Result<(std::net::UdpSocket, std::net::TcpListener), EngineError> {
    let mut last = None;
    for port in [53u16, 10053] {
        let addr = SocketAddr::new(ip, port);
        match (
            std::net::TcpListener::bind(addr),
            std::net::UdpSocket::bind(addr),
        ) {
            (Ok(t), Ok(u)) => return Ok((u, t)),
            (Err(e), _) | (_, Err(e)) => last = Some(e),
        }
    }
    Err(EngineError::Io(last.unwrap_or_else(|| {
        std::io::Error::other("no port to bind")
    })))
}

impl DnsEngine {
    fn start(ctx: &EngineContext) -> Result<Self, EngineError> {
        let (udp, tcp) = bind(ctx.bind)?;
        let addr = tcp.local_addr()?;
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        let udp = tokio::net::UdpSocket::from_std(udp)?;
        let tcp = tokio::net::TcpListener::from_std(tcp)?;
        let (zones, rx) = watch::channel(Arc::new(ZoneSet::new()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(role_dns::run(udp, tcp, rx, async move {
            let _ = stopped.await;
        }));
        tracing::info!(%addr, "dns engine listening");
        Ok(Self {
            zones,
            stop: Some(stop),
            addr,
            status: Arc::new(Mutex::new((
                EngineState::Ok,
                format!("serving 0 zones on {addr}"),
            ))),
        })
    }

    fn set_status(&self, state: EngineState, detail: String) {
        *self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (state, detail);
    }
}

/// The engine's zone description from the controller's zone content.
fn zone_data(z: &ZoneContent) -> ZoneData {
    ZoneData {
        origin: format!("{}.", z.origin),
        serial: z.serial,
        records: z
            .records
            .iter()
            .map(|r| RecordLine {
                name: format!("{}.", r.name),
                ttl: r.ttl,
                rtype: r.rtype.clone(),
                rdata: r.data.clone(),
            })
            .collect(),
    }
}

impl RoleEngine for DnsEngine {
    fn name(&self) -> &str {
        "dns"
    }

    fn apply<'a>(&'a mut self, cfg: &'a RoleConfig) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            let RoleConfig::Dns(dns) = cfg else {
                return Err(EngineError::Invalid(format!(
                    "a dns engine got a {} config",
                    cfg.role()
                )));
            };
            let data: Vec<ZoneData> = dns
                .zones
                .iter()
                .filter_map(|z| z.zone.as_ref())
                .map(zone_data)
                .collect();
            match ZoneSet::from_data(&data) {
                Ok(set) => {
                    let n = set.len();
                    self.zones.send_replace(Arc::new(set));
                    self.set_status(
                        EngineState::Ok,
                        format!("serving {n} zones on {}", self.addr),
                    );
                    Ok(())
                }
                Err(e) => {
                    self.set_status(
                        EngineState::Degraded,
                        format!("kept the previous zones: {e}"),
                    );
                    Err(EngineError::Apply(e.to_string()))
                }
            }
        })
    }

    fn health(&self) -> EngineHealth {
        let (state, detail) = self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        EngineHealth {
            name: "dns".into(),
            state,
            detail,
        }
    }

    fn shutdown(&mut self) -> BoxFuture<'_, ()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        Box::pin(async {})
    }
}
