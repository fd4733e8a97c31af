//! Server-sent events, both ways: [`Parser`] reads the API's
//! `GET /v1/map/events` stream as it arrives in arbitrary chunks, [`encode`] writes
//! the panel's own events for the browser's `EventSource` (the HTML standard's
//! `text/event-stream`: `event:` and `data:` lines, a blank line ends an event,
//! lines starting with `:` are comments).

/// One event: its name (`message` when the stream named none) and its data (the
/// `data:` lines joined with `\n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field.
    pub name: String,
    /// The `data:` fields.
    pub data: String,
}

/// Largest event the parser holds (a stream sending more without a blank line is
/// cut off: the parser drops what it held).
const MAX_PENDING: usize = 1024 * 1024;

/// An incremental parser of an event stream.
#[derive(Debug, Default)]
pub struct Parser {
    pending: Vec<u8>,
}

impl Parser {
    /// Feed a chunk; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some((end, skip)) = block_end(&self.pending) {
            let block: Vec<u8> = self.pending.drain(..end + skip).take(end).collect();
            if let Some(e) = event(&String::from_utf8_lossy(&block)) {
                out.push(e);
            }
        }
        if self.pending.len() > MAX_PENDING {
            self.pending.clear();
        }
        out
    }
}

/// Where the first event block ends (a blank line, `\n\n` or `\r\n\r\n`), and how
/// many bytes the separator takes.
fn block_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The event of one block, if it has data or a name (comments alone are none).
fn event(block: &str) -> Option<Event> {
    let mut name = None;
    let mut data: Option<String> = None;
    for line in block.lines() {
        if line.starts_with(':') || line.is_empty() {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => name = Some(value.to_owned()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    if name.is_none() && data.is_none() {
        return None;
    }
    Some(Event {
        name: name.unwrap_or_else(|| "message".into()),
        data: data.unwrap_or_default(),
    })
}

/// One event for the browser: `data` may span lines (each becomes a `data:` line;
/// carriage returns are dropped, the browser would split on them).
pub fn encode(name: &str, data: &str) -> String {
    let mut out = format!("event: {name}\n");
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(&line.replace('\r', ""));
        out.push('\n');
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn events_comments_and_line_endings() {
        let mut p = Parser::default();
        let got = p.push(b": keep-alive\n\nevent: health\ndata: {\"a\":1}\n\ndata: x\r\ndata: y\r\n\r\nevent: re");
        assert_eq!(
            got,
            vec![
                Event {
                    name: "health".into(),
                    data: "{\"a\":1}".into()
                },
                Event {
                    name: "message".into(),
                    data: "x\ny".into()
                },
            ]
        );
        assert_eq!(
            p.push(b"sync\ndata: {}\n\n"),
            vec![Event {
                name: "resync".into(),
                data: "{}".into()
            }]
        );
    }

    #[test]
    fn encoded_events_read_back() {
        let html = "<svg>\n<g class=\"a\">\r\n</g>\n</svg>";
        let text = encode("map", html);
        assert!(text.ends_with("\n\n"));
        let got = Parser::default().push(text.as_bytes());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "map");
        assert_eq!(got[0].data, html.replace('\r', ""));
    }

    proptest! {
        /// However the stream is cut into chunks, the same events come out.
        #[test]
        fn chunking_does_not_matter(
            events in prop::collection::vec(("[a-z]{1,8}", "[ -~]{0,40}"), 0..6),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let text: String = events.iter().map(|(n, d)| encode(n, d)).collect();
            let bytes = text.as_bytes();
            let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            at.sort_unstable();
            let mut p = Parser::default();
            let mut got = Vec::new();
            let mut from = 0;
            for cut in at.into_iter().chain([bytes.len()]) {
                got.extend(p.push(&bytes[from..cut]));
                from = cut;
            }
            let want: Vec<Event> = events
                .iter()
                .map(|(n, d)| Event { name: n.clone(), data: d.clone() })
                .collect();
            prop_assert_eq!(got, want);
        }

        /// Any bytes at all: no panic, and the held part stays bounded.
        #[test]
        fn arbitrary_input_is_harmless(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..10)) {
            let mut p = Parser::default();
            for c in &chunks {
                let _ = p.push(c);
            }
            prop_assert!(p.pending.len() <= MAX_PENDING + 200);
        }
    }
}
