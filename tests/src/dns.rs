//! A real DNS server on loopback (UDP) for the push egress tests: it answers
//! `A`/`AAAA` queries from a function of (name, type, how many times this name
//! and type were asked before), with TTL 0, so a test can make a name resolve
//! to a public address first and to the relay's own loopback next (DNS
//! rebinding). The relay's push resolver is pointed at it with
//! `--push-dns-server`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};

/// What the server answers: the addresses for (name without the final dot,
/// `A` or `AAAA`, times asked before).
pub type Answers = dyn Fn(&str, RecordType, usize) -> Vec<IpAddr> + Send + Sync;

/// The running server: its address and the queries it got.
#[derive(Clone)]
pub struct DnsServer {
    pub addr: SocketAddr,
    asked: Arc<Mutex<HashMap<(String, RecordType), usize>>>,
}

impl DnsServer {
    pub async fn start(
        answers: impl Fn(&str, RecordType, usize) -> Vec<IpAddr> + Send + Sync + 'static,
    ) -> Self {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let asked: Arc<Mutex<HashMap<(String, RecordType), usize>>> = Arc::default();
        let server = Self {
            addr,
            asked: Arc::clone(&asked),
        };
        let answers: Arc<Answers> = Arc::new(answers);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut reply =
                    Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
                reply.metadata.recursion_desired = query.metadata.recursion_desired;
                reply.metadata.recursion_available = true;
                for q in &query.queries {
                    let name = q.name().to_ascii();
                    let name = name.trim_end_matches('.').to_ascii_lowercase();
                    let kind = q.query_type();
                    let before = {
                        let mut asked = asked.lock().unwrap();
                        let n = asked.entry((name.clone(), kind)).or_insert(0);
                        *n += 1;
                        *n - 1
                    };
                    reply.add_query(q.clone());
                    for ip in answers(&name, kind, before) {
                        let rdata = match (ip, kind) {
                            (IpAddr::V4(v4), RecordType::A) => RData::A(A(v4)),
                            (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(v6)),
                            _ => continue,
                        };
                        reply.add_answer(Record::from_rdata(q.name().clone(), 0, rdata));
                    }
                }
                if let Ok(bytes) = reply.to_vec() {
                    let _ = socket.send_to(&bytes, from).await;
                }
            }
        });
        server
    }

    /// How often `name` was asked for records of `kind`.
    pub fn asked(&self, name: &str, kind: RecordType) -> usize {
        self.asked
            .lock()
            .unwrap()
            .get(&(name.to_string(), kind))
            .copied()
            .unwrap_or(0)
    }
}
