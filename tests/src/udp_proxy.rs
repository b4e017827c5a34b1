//! A UDP proxy in front of a real `td peer serve`, for faults the real network cannot produce
//! on demand: it drops, duplicates and reorders QUIC datagrams at chosen rates, and emulates a
//! link's delay, rate and buffer. It wraps the real traffic; QUIC on both ends is the
//! product's own.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

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

/// The link a proxy emulates in each direction: one-way delay, a rate, and a buffer. A
/// datagram leaves after the link has carried the ones before it (at `rate`) plus `delay`;
/// one that would wait longer than `buffer` in the queue is dropped, as a router's full
/// queue drops (so a sender that overruns the rate sees loss, as on a real path).
#[derive(Debug, Clone, Copy, Default)]
pub struct Link {
    /// One-way delay (half the round trip).
    pub delay: Duration,
    /// Bytes per second the link carries (`None`: no limit).
    pub rate: Option<u64>,
    /// Longest queueing before a datagram is dropped (when `rate` is set).
    pub buffer: Duration,
}

type Datagram = (Vec<u8>, SocketAddr, Arc<UdpSocket>);

/// One direction of the emulated link: its queue's end, and the thread that delivers.
struct Lane {
    free_at: Instant,
    tx: mpsc::Sender<(Instant, Datagram)>,
}

impl Lane {
    fn start() -> Lane {
        let (tx, rx) = mpsc::channel::<(Instant, Datagram)>();
        std::thread::spawn(move || {
            // Delivery times are non-decreasing within a lane (a FIFO link), so one sleeping
            // thread per direction delivers every datagram on time.
            for (at, (data, to, via)) in rx {
                let now = Instant::now();
                if at > now {
                    std::thread::sleep(at - now);
                }
                let _ = via.send_to(&data, to);
            }
        });
        Lane {
            free_at: Instant::now(),
            tx,
        }
    }
}

struct Chaos {
    rates: Rates,
    link: Link,
    dice: Dice,
    held: Option<Datagram>,
    lanes: [Lane; 2],
}

impl Chaos {
    /// Sends `data` to `to` through `via` in direction `lane` (0 toward the server, 1 back),
    /// applying the fault rates and the link.
    fn send(&mut self, lane: usize, via: &Arc<UdpSocket>, data: &[u8], to: SocketAddr) {
        let roll = self.dice.below(1000) as u32;
        let r = self.rates;
        if roll < r.drop {
            return;
        }
        if roll < r.drop + r.reorder && self.held.is_none() {
            self.held = Some((data.to_vec(), to, via.clone()));
            return;
        }
        self.emit(lane, (data.to_vec(), to, via.clone()));
        if roll < r.drop + r.reorder + r.duplicate {
            self.emit(lane, (data.to_vec(), to, via.clone()));
        }
        if let Some(d) = self.held.take() {
            self.emit(lane, d);
        }
    }

    fn emit(&mut self, lane: usize, d: Datagram) {
        let link = self.link;
        if link.delay.is_zero() && link.rate.is_none() {
            let _ = d.2.send_to(&d.0, d.1);
            return;
        }
        let now = Instant::now();
        let lane = &mut self.lanes[lane];
        let start = lane.free_at.max(now);
        if let Some(rate) = link.rate {
            if start - now > link.buffer {
                return; // the queue is full: tail drop
            }
            lane.free_at = start + Duration::from_secs_f64(d.0.len() as f64 / rate.max(1) as f64);
        } else {
            lane.free_at = start;
        }
        let _ = lane.tx.send((lane.free_at + link.delay, d));
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
            link: Link::default(),
            dice: Dice::new(seed),
            held: None,
            lanes: [Lane::start(), Lane::start()],
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
                                c.lock().unwrap().send(1, &f, &buf[..n], client);
                            }
                        }
                    });
                    back
                });
                let to = *up.lock().unwrap();
                ch.lock().unwrap().send(0, back, &buf[..n], to);
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

    /// Sets the emulated link (delay, rate, buffer) of both directions.
    pub fn set_link(&self, link: Link) {
        self.chaos.lock().unwrap().link = link;
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
