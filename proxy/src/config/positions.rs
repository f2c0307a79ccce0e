//! Maps a field path (`listeners[0].tls.cert`) to the line and column where it stands in the
//! YAML source, so that validation errors can name `file:line:col` like parse errors do.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Positions of every key and value in a YAML document, by dotted path.
#[derive(Debug, Default)]
pub struct Positions {
    /// path → (line, column), both 1-based, of the value (or of the key for mappings).
    at: HashMap<String, (usize, usize)>,
}

impl Positions {
    /// Indexes `src`. A document that does not parse yields an empty index: serde reports the
    /// syntax error with its own position first.
    pub fn index(src: &str) -> Self {
        let mut rec = Recorder::default();
        let mut parser = Parser::new_from_str(src);
        if parser.load(&mut rec, false).is_err() {
            return Self::default();
        }
        Self { at: rec.at }
    }

    /// The position of `path`, or of its nearest ancestor that has one.
    pub fn find(&self, path: &str) -> (usize, usize) {
        let mut p = path;
        loop {
            if let Some(pos) = self.at.get(p) {
                return *pos;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return (1, 1),
            }
        }
    }
}

enum Frame {
    Map { key: Option<String> },
    Seq { index: usize },
}

#[derive(Default)]
struct Recorder {
    stack: Vec<(Frame, String)>,
    at: HashMap<String, (usize, usize)>,
}

impl Recorder {
    /// The path of the node about to be read in the current container, advancing it.
    /// Returns None when the node is a mapping key.
    fn next_path(&mut self) -> Option<String> {
        let Some((frame, base)) = self.stack.last_mut() else {
            return Some(String::new());
        };
        match frame {
            Frame::Seq { index } => {
                let p = format!("{base}[{index}]");
                *index += 1;
                Some(p)
            }
            Frame::Map { key } => match key.take() {
                Some(k) if base.is_empty() => Some(k),
                Some(k) => Some(format!("{base}.{k}")),
                None => None,
            },
        }
    }

    /// Keys and container starts keep the first position seen (the key's); scalar values
    /// replace it, so an error in a value points at the value.
    fn record(&mut self, path: String, mark: Marker, value: bool) {
        let pos = (mark.line().max(1), mark.col() + 1);
        if value {
            self.at.insert(path, pos);
        } else {
            self.at.entry(path).or_insert(pos);
        }
    }
}

impl MarkedEventReceiver for Recorder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => match self.next_path() {
                Some(path) => self.record(path, mark, true),
                None => {
                    // A mapping key: remember it, and record the key's own position so that a
                    // missing or invalid value still points at its key.
                    let path = match self.stack.last() {
                        Some((_, base)) if !base.is_empty() => format!("{base}.{value}"),
                        _ => value.clone(),
                    };
                    self.record(path, mark, false);
                    if let Some((Frame::Map { key }, _)) = self.stack.last_mut() {
                        *key = Some(value);
                    }
                }
            },
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = self.next_path().unwrap_or_default();
                self.record(path.clone(), mark, false);
                let frame = if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map { key: None }
                } else {
                    Frame::Seq { index: 0 }
                };
                self.stack.push((frame, path));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(_) => {
                let _ = self.next_path();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_fields_and_falls_back_to_parent() {
        let src = "admin:\n  address: 1.2.3.4:5\nlisteners:\n  - name: a\n    tls:\n      cert: x.pem\n  - name: b\n";
        let p = Positions::index(src);
        assert_eq!(p.find("admin.address"), (2, 12));
        assert_eq!(p.find("listeners[0].tls.cert"), (6, 13));
        assert_eq!(p.find("listeners[1].name"), (7, 11));
        // Missing field: the nearest ancestor (the list item).
        assert_eq!(p.find("listeners[1].upstream"), p.find("listeners[1]"));
    }
}
