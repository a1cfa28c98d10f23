//! Evolution API media, streamed: `POST /chat/getBase64FromMediaMessage/{instance}` answers one JSON
//! object whose `base64` field holds the whole file. Instead of reading that answer into memory (a
//! 90 MiB video is 120 MiB of base64, then 90 MiB decoded), the answer is scanned as it arrives: the
//! bytes before the field (where `mimetype` sits) are kept, bounded; the field's characters are decoded
//! four at a time and passed on at once; the size limit is enforced while streaming; whatever follows
//! the field is never read.

use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use schema::channel::{MediaError, MediaStream};

/// Most bytes of the answer kept before the `base64` field (its other fields are short).
const MAX_PREFIX: usize = 64 * 1024;
const FIELD: &[u8] = b"\"base64\"";

/// Where the scan is.
enum State {
    /// Looking for `"base64"`, then `:` and the opening quote; and how far the bytes were searched
    /// (each byte is searched about once, whatever the chunk sizes).
    Prefix(Vec<u8>, usize),
    /// Inside the value: base64 characters not yet decoded (fewer than four), and whether the last
    /// chunk ended on a backslash (an escape split across chunks).
    Value(Vec<u8>, bool),
    Done,
}

/// Incremental decoder of the `base64` string field of a JSON object.
pub(crate) struct Base64Field {
    state: State,
    decoded: u64,
    max_bytes: u64,
    /// `mimetype` when it came before the field.
    pub(crate) mimetype: Option<String>,
}

impl Base64Field {
    pub(crate) fn new(max_bytes: u64) -> Self {
        Self {
            state: State::Prefix(Vec::new(), 0),
            decoded: 0,
            max_bytes,
            mimetype: None,
        }
    }

    /// Whether the closing quote of the field was seen.
    pub(crate) fn done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Feeds the next chunk of the answer; returns the file bytes it completes.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<Vec<u8>, MediaError> {
        let State::Prefix(prefix, scanned) = &mut self.state else {
            return self.feed_value(chunk);
        };
        prefix.extend_from_slice(chunk);
        // A key (with its colon, spaces and quote) may straddle the previous end: look back a little.
        let from = scanned.saturating_sub(FIELD.len() + 32);
        *scanned = prefix.len();
        let found = match value_start(prefix, from) {
            Ok(found) => Some(found),
            // The key is here but its value has not arrived: search from the key next time.
            Err(Some(key)) => {
                *scanned = key;
                None
            }
            Err(None) => None,
        };
        let Some((value_start, mimetype)) = found else {
            if prefix.len() > MAX_PREFIX {
                return Err(MediaError::Unavailable(
                    "no base64 field in the media answer".into(),
                ));
            }
            return Ok(Vec::new());
        };
        let tail = prefix.split_off(value_start);
        self.mimetype = mimetype;
        self.state = State::Value(Vec::new(), false);
        self.feed_value(&tail)
    }

    fn feed_value(&mut self, chunk: &[u8]) -> Result<Vec<u8>, MediaError> {
        let State::Value(pending, escaped) = &mut self.state else {
            return Ok(Vec::new());
        };
        let mut closed = false;
        for &byte in chunk {
            if *escaped {
                *escaped = false;
                match byte {
                    // `\/` is a `/`; `\n`, `\r` are line wrapping inside the base64 text.
                    b'/' => pending.push(b'/'),
                    b'n' | b'r' | b't' => {}
                    other => {
                        return Err(MediaError::Unavailable(format!(
                            "unexpected escape \\{} in the media's base64",
                            char::from(other)
                        )));
                    }
                }
                continue;
            }
            match byte {
                b'"' => {
                    closed = true;
                    break;
                }
                b'\\' => *escaped = true,
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=' => pending.push(byte),
                b' ' | b'\n' | b'\r' | b'\t' => {}
                other => {
                    return Err(MediaError::Unavailable(format!(
                        "media is not base64 (byte {other:#04x})"
                    )));
                }
            }
        }
        let whole = if closed {
            pending.len()
        } else {
            pending.len() / 4 * 4
        };
        let ready: Vec<u8> = pending.drain(..whole).collect();
        let out = base64::engine::general_purpose::STANDARD
            .decode(&ready)
            .map_err(|e| MediaError::Unavailable(format!("media is not base64: {e}")))?;
        self.decoded += out.len() as u64;
        if self.decoded > self.max_bytes {
            return Err(MediaError::TooLarge(self.decoded));
        }
        if closed {
            self.state = State::Done;
        }
        Ok(out)
    }
}

/// After the `"base64"` key: the offset where its string value starts, and `mimetype` if it came first.
/// A `"base64"` that is a value (a caption, a file name), not the key, is skipped.
fn value_start(prefix: &[u8], from: usize) -> Result<(usize, Option<String>), Option<usize>> {
    let skip_space = |at: &mut usize| {
        while prefix.get(*at).is_some_and(u8::is_ascii_whitespace) {
            *at += 1;
        }
    };
    let mut from = from;
    while let Some(found) = prefix[from..].windows(FIELD.len()).position(|w| w == FIELD) {
        let key = from + found;
        from = key + 1;
        let mut at = key + FIELD.len();
        skip_space(&mut at);
        match prefix.get(at) {
            Some(b':') => {}
            None => return Err(Some(key)),
            Some(_) => continue,
        }
        at += 1;
        skip_space(&mut at);
        match prefix.get(at) {
            Some(b'"') => return Ok((at + 1, mimetype(&prefix[..key]))),
            // Not arrived yet: wait for more bytes.
            None => return Err(Some(key)),
            // `"base64": null` or another non-string: not a file.
            Some(_) => continue,
        }
    }
    Err(None)
}

/// `"mimetype": "…"` in the part of the object before the file.
fn mimetype(head: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"mimetype\"";
    let key = head.windows(KEY.len()).position(|w| w == KEY)?;
    let rest = &head[key + KEY.len()..];
    // `"mimetype": "image/jpeg"`: a colon, spaces, then a string (a `null` is no type).
    let colon = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    if rest[colon] != b':' {
        return None;
    }
    let after = &rest[colon + 1..];
    let open = after.iter().position(|b| !b.is_ascii_whitespace())?;
    if after[open] != b'"' {
        return None;
    }
    let value = &after[open + 1..];
    let close = value.iter().position(|b| *b == b'"')?;
    let text = std::str::from_utf8(&value[..close]).ok()?;
    (text.len() <= 255).then(|| text.to_string())
}

/// Streams the file out of a `getBase64FromMediaMessage` answer.
pub(crate) async fn stream(
    response: reqwest::Response,
    fallback_type: Option<String>,
    max_bytes: u64,
) -> Result<MediaStream, MediaError> {
    let mut body = response.bytes_stream();
    let mut field = Base64Field::new(max_bytes);
    // Read up to the field's first bytes, so a missing field or a wrong type fails the request itself.
    let mut first = Vec::new();
    while matches!(field.state, State::Prefix(..)) {
        let Some(chunk) = body.next().await else {
            return Err(MediaError::NotFound);
        };
        let chunk = chunk.map_err(|e| MediaError::Unavailable(e.without_url().to_string()))?;
        first = field.feed(&chunk)?;
    }
    let content_type = field.mimetype.clone().or(fallback_type);
    let rest = futures::stream::unfold(
        (body, field, Some(first)),
        |(mut body, mut field, first)| async move {
            if let Some(first) = first.filter(|f| !f.is_empty()) {
                return Some((Ok(Bytes::from(first)), (body, field, None)));
            }
            loop {
                if field.done() {
                    return None;
                }
                let chunk = match body.next().await {
                    Some(Ok(chunk)) => chunk,
                    Some(Err(error)) => {
                        field.state = State::Done;
                        return Some((Err(error.to_string()), (body, field, None)));
                    }
                    // The answer ended inside the field: the file is cut short, never served as if
                    // whole.
                    None => {
                        field.state = State::Done;
                        return Some((
                            Err("the media answer ended before the file did".to_string()),
                            (body, field, None),
                        ));
                    }
                };
                match field.feed(&chunk) {
                    Ok(out) if out.is_empty() => continue,
                    Ok(out) => return Some((Ok(Bytes::from(out)), (body, field, None))),
                    Err(error) => {
                        field.state = State::Done;
                        return Some((Err(error.to_string()), (body, field, None)));
                    }
                }
            }
        },
    );
    Ok(MediaStream {
        content_type,
        length: None,
        body: rest.boxed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(file: &[u8]) -> Vec<u8> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(file);
        format!(
            r#"{{"mediaType": "imageMessage", "fileName": "x.jpg", "mimetype": "image/jpeg", "base64" : "{encoded}", "size": {{"fileLength": 1}}}}"#
        )
        .into_bytes()
    }

    fn run(answer: &[u8], split: usize, max: u64) -> Result<(Vec<u8>, Option<String>), MediaError> {
        let mut field = Base64Field::new(max);
        let mut out = Vec::new();
        for chunk in answer.chunks(split.max(1)) {
            out.extend(field.feed(chunk)?);
            if field.done() {
                break;
            }
        }
        assert!(field.done(), "the field never closed");
        Ok((out, field.mimetype))
    }

    #[test]
    fn the_file_comes_out_whole_whatever_the_chunk_boundaries() {
        let file: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 256) as u8).collect();
        let answer = answer(&file);
        for split in [1, 2, 3, 5, 7, 64, 1000, answer.len()] {
            let (out, mime) = run(&answer, split, 1 << 20).unwrap();
            assert_eq!(out, file, "split {split}");
            assert_eq!(mime.as_deref(), Some("image/jpeg"));
        }
    }

    #[test]
    fn a_file_over_the_limit_stops_while_streaming() {
        let file = vec![1u8; 10_000];
        assert!(matches!(
            run(&answer(&file), 512, 4096),
            Err(MediaError::TooLarge(_))
        ));
    }

    #[test]
    fn escaped_slashes_and_wrapped_lines_are_base64_text() {
        let file = vec![0xffu8; 300];
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(&file)
            .replace('/', "\\/");
        let wrapped = format!(r#"{{"base64":"{}\n{}"}}"#, &encoded[..40], &encoded[40..]);
        let (out, _) = run(wrapped.as_bytes(), 9, 1 << 20).unwrap();
        assert_eq!(out, file);
    }

    #[test]
    fn an_escape_split_across_chunks_a_caption_named_base64_and_a_null_type_are_read_right() {
        let file = vec![0x5au8; 200];
        let encoded = base64::engine::general_purpose::STANDARD.encode(&file);
        let answer = format!(
            r#"{{"caption": "base64", "mimetype": null, "base64": "{}\n{}"}}"#,
            &encoded[..10],
            &encoded[10..]
        );
        for split in 1..40 {
            let (out, mime) = run(answer.as_bytes(), split, 1 << 20).unwrap();
            assert_eq!(out, file, "split {split}");
            assert_eq!(mime, None);
        }
    }

    #[test]
    fn an_answer_without_the_field_is_refused_once_bounded() {
        let mut field = Base64Field::new(1 << 20);
        let junk = vec![b' '; MAX_PREFIX + 10];
        assert!(field.feed(&junk).is_err());
    }
}
