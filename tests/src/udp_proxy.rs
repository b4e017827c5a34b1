//! A UDP proxy in front of a real `td peer serve`, for faults the real network cannot produce
//! on demand: it drops, duplicates and reorders QUIC datagrams at chosen rates. It wraps the
//! real traffic; QUIC on both ends is the product's own.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Fault rates, in datagrams per thousand.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rates {
    /// Dropped.
    pub drop: u32,
    /// Sent twice.
    pub duplicate: u32,
    /// Held back and sent after the next datagram.
    pub reorder: u32,
}

/// A small deterministic generator (xorshift), so a soak's faults follow its seed.
#[derive(Debug, Clone)]
pub struct Dice(u64);

impl Dice {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Dice {
        Dice(seed | 1)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

struct Chaos {
    rates: Rates,
    dice: Dice,
    held: Option<(Vec<u8>, SocketAddr, Arc<UdpSocket>)>,
}

impl Chaos {
    /// Sends `data` to `to` through `via`, applying the fault rates.
    fn send(&mut self, via: &Arc<UdpSocket>, data: &[u8], to: SocketAddr) {
        let roll = self.dice.below(1000) as u32;
        let r = self.rates;
        if roll < r.drop {
            return;
        }
        if roll < r.drop + r.reorder && self.held.is_none() {
            self.held = Some((data.to_vec(), to, via.clone()));
            return;
        }
        let _ = via.send_to(data, to);
        if roll < r.drop + r.reorder + r.duplicate {
            let _ = via.send_to(data, to);
        }
        if let Some((d, t, v)) = self.held.take() {
            let _ = v.send_to(&d, t);
        }
    }
}

/// A running proxy: clients send to [`UdpProxy::addr`]; it forwards to the upstream server.
pub struct UdpProxy {
    /// Where clients send.
    pub addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    chaos: Arc<Mutex<Chaos>>,
    stop: Arc<AtomicBool>,
}

impl UdpProxy {
    /// Starts a proxy to `upstream` with no faults.
    pub fn start(upstream: SocketAddr, seed: u64) -> UdpProxy {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        front
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = front.local_addr().unwrap();
        let upstream = Arc::new(Mutex::new(upstream));
        let chaos = Arc::new(Mutex::new(Chaos {
            rates: Rates::default(),
            dice: Dice::new(seed),
            held: None,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (up, ch, st) = (upstream.clone(), chaos.clone(), stop.clone());
        std::thread::spawn(move || {
            // One upstream socket per client, so the server sees one address per client.
            let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 65536];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, client)) = front.recv_from(&mut buf) else {
                    continue;
                };
                let back = backs.entry(client).or_insert_with(|| {
                    let back = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
                    back.set_read_timeout(Some(Duration::from_millis(50)))
                        .unwrap();
                    let (b, f, c, s) = (back.clone(), front.clone(), ch.clone(), st.clone());
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 65536];
                        while !s.load(Ordering::Relaxed) {
                            if let Ok((n, _)) = b.recv_from(&mut buf) {
                                c.lock().unwrap().send(&f, &buf[..n], client);
                            }
                        }
                    });
                    back
                });
                let to = *up.lock().unwrap();
                ch.lock().unwrap().send(back, &buf[..n], to);
            }
        });
        UdpProxy {
            addr,
            upstream,
            chaos,
            stop,
        }
    }

    /// Sets the fault rates.
    pub fn set_rates(&self, rates: Rates) {
        self.chaos.lock().unwrap().rates = rates;
    }

    /// Points the proxy at a restarted server.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap() = upstream;
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
