//! Message bodies, followed by counting: Content-Length, chunked, or until the connection
//! closes.

use super::limits::MAX_HEAD_BYTES;
use super::syntax::{advance, hex_value, Stop};

/// How a message body ends.
#[derive(Debug, Clone, Copy)]
pub(super) enum BodyReader {
    /// Content-Length: this many bytes remain.
    Length(u64),
    Chunked(ChunkedReader),
    /// Ends when the connection closes (responses only).
    UntilClose,
}

/// What one `read` did.
#[derive(Debug, Clone, Copy)]
pub(super) struct Progress {
    /// Bytes of the input that belong to this body.
    pub(super) used: usize,
    /// Of those, bytes of content (not chunked framing).
    pub(super) content: u64,
    /// The body is complete; bytes after `used` belong to the next message.
    pub(super) done: bool,
}

impl BodyReader {
    pub(super) fn read(&mut self, data: &[u8]) -> Result<Progress, Stop> {
        match self {
            BodyReader::Length(remaining) => {
                let take = usize::try_from(*remaining).map_or(data.len(), |r| r.min(data.len()));
                let content = u64::try_from(take).unwrap_or(u64::MAX);
                *remaining = remaining.saturating_sub(content);
                Ok(Progress {
                    used: take,
                    content,
                    done: *remaining == 0,
                })
            }
            BodyReader::Chunked(chunked) => chunked.read(data),
            BodyReader::UntilClose => Ok(Progress {
                used: data.len(),
                content: u64::try_from(data.len()).unwrap_or(u64::MAX),
                done: false,
            }),
        }
    }
}

/// Follows a chunked body (RFC 9112 §7.1): chunk-size lines with optional extensions, chunk
/// data skipped by counting, then trailer lines up to a blank line.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct ChunkedReader {
    state: ChunkState,
    /// While reading a size line: the size so far. While in `Data`: bytes left in the chunk.
    size: u64,
    /// Bytes of the current size line, or of the trailer section; at most [`MAX_HEAD_BYTES`].
    spent: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting the first hex digit of a chunk size.
    #[default]
    SizeStart,
    /// Inside the hex digits.
    Size,
    /// Whitespace after the digits, before `;` or the line end.
    SizeSpace,
    /// Inside chunk extensions: skipped up to LF.
    Ext,
    /// Saw CR ending the size line; expecting LF.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// After chunk data; expecting CR or LF.
    DataCr,
    /// After chunk data and CR; expecting LF.
    DataLf,
    /// At the start of a trailer line (or of the final blank line).
    TrailerStart,
    /// Saw CR at the start of a trailer line.
    TrailerStartCr,
    /// Inside a trailer field line: skipped up to LF.
    TrailerLine,
}

impl ChunkedReader {
    fn charge(&mut self, n: usize) -> Result<(), Stop> {
        self.spent = self.spent.saturating_add(n);
        if self.spent > MAX_HEAD_BYTES {
            Err(Stop)
        } else {
            Ok(())
        }
    }

    fn end_size_line(&mut self) {
        if self.size == 0 {
            self.state = ChunkState::TrailerStart;
            self.spent = 0;
        } else {
            self.state = ChunkState::Data;
        }
    }

    fn next_size_line(&mut self) {
        self.state = ChunkState::SizeStart;
        self.size = 0;
        self.spent = 0;
    }

    pub(super) fn read(&mut self, data: &[u8]) -> Result<Progress, Stop> {
        let mut rest = data;
        let mut content = 0u64;
        let mut done = false;
        while !done {
            let Some((&byte, tail)) = rest.split_first() else {
                break;
            };
            match self.state {
                ChunkState::Data => {
                    let take = usize::try_from(self.size).map_or(rest.len(), |s| s.min(rest.len()));
                    let counted = u64::try_from(take).unwrap_or(u64::MAX);
                    self.size = self.size.saturating_sub(counted);
                    content = content.saturating_add(counted);
                    rest = advance(rest, take);
                    if self.size == 0 {
                        self.state = ChunkState::DataCr;
                    }
                    continue;
                }
                ChunkState::Ext | ChunkState::TrailerLine => {
                    match rest.iter().position(|&b| b == b'\n') {
                        Some(i) => {
                            let used = i.saturating_add(1);
                            self.charge(used)?;
                            rest = advance(rest, used);
                            if self.state == ChunkState::Ext {
                                self.end_size_line();
                            } else {
                                self.state = ChunkState::TrailerStart;
                            }
                        }
                        None => {
                            self.charge(rest.len())?;
                            rest = &[];
                        }
                    }
                    continue;
                }
                _ => {}
            }
            rest = tail;
            self.charge(1)?;
            match (self.state, byte) {
                (ChunkState::SizeStart, _) => {
                    self.size = u64::from(hex_value(byte).ok_or(Stop)?);
                    self.state = ChunkState::Size;
                }
                (ChunkState::Size, _) if hex_value(byte).is_some() => {
                    let digit = u64::from(hex_value(byte).unwrap_or(0));
                    self.size = self
                        .size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(digit))
                        .ok_or(Stop)?;
                }
                (ChunkState::Size | ChunkState::SizeSpace, b' ' | b'\t') => {
                    self.state = ChunkState::SizeSpace;
                }
                (ChunkState::Size | ChunkState::SizeSpace, b';') => self.state = ChunkState::Ext,
                (ChunkState::Size | ChunkState::SizeSpace, b'\r') => {
                    self.state = ChunkState::SizeLf;
                }
                (ChunkState::Size | ChunkState::SizeSpace | ChunkState::SizeLf, b'\n') => {
                    self.end_size_line();
                }
                (ChunkState::DataCr, b'\r') => self.state = ChunkState::DataLf,
                (ChunkState::DataCr | ChunkState::DataLf, b'\n') => self.next_size_line(),
                (ChunkState::TrailerStart, b'\r') => self.state = ChunkState::TrailerStartCr,
                (ChunkState::TrailerStart | ChunkState::TrailerStartCr, b'\n') => {
                    // The blank line ending the trailer section: the body is complete.
                    self.next_size_line();
                    done = true;
                }
                (ChunkState::TrailerStart | ChunkState::TrailerStartCr, _) => {
                    self.state = ChunkState::TrailerLine;
                }
                _ => return Err(Stop),
            }
        }
        Ok(Progress {
            used: data.len().saturating_sub(rest.len()),
            content,
            done,
        })
    }
}
