//! A hand-written recursive-descent parser for the packetdrill script language.
//!
//! The parser works on the characters directly (no separate token stream): the language is
//! context sensitive (`<` starts an inbound packet or an option list, `(` starts IP fields,
//! a payload length or the comment after a return value, `.` is a flag or part of `...`),
//! and reading it in place keeps every decision local and every error position exact.
//!
//! Layout rules: an event is one line (from its time column to the end of the line), except
//! that bracketed parts (`(...)` arguments, `[...]`, `{...}`, `<...>` options) and the text of
//! `` `...` `` and `%{ ... }%` may continue over several lines. `//` and `/* */` comments may
//! appear wherever blanks may.

use crate::ast::*;
use crate::error::ParseError;

type PResult<T> = Result<T, ParseError>;

/// Parse a whole script. `file` only names the source in errors.
pub(crate) fn parse_script(file: &str, src: &str) -> PResult<Script> {
    Parser::new(file, src).script()
}

/// Parse a single event line (time column included), e.g. `+0 > S. 0:0(0) ack 1 win 1000`.
pub(crate) fn parse_event(src: &str) -> PResult<Event> {
    let mut p = Parser::new("<event>", src);
    p.skip_all()?;
    let event = p.event()?;
    p.skip_all()?;
    if !p.eof() {
        return Err(p.err(p.pos, format!("unexpected {} after the event", p.describe())));
    }
    Ok(event)
}

/// An open `#ifdef` / `#ifndef` section.
struct OpenSection {
    condition: Condition,
    /// Where its directive starts, for the "never closed" error.
    pos: usize,
    /// Whether its `#else` has been seen.
    has_else: bool,
}

struct Parser<'a> {
    file: &'a str,
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Byte offset of the start of every line.
    line_starts: Vec<usize>,
    sections: Vec<OpenSection>,
    /// Positions of the brackets opened and not yet closed, innermost last.
    brackets: Vec<usize>,
}

fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_word_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl<'a> Parser<'a> {
    fn new(file: &'a str, src: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(src.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i + 1));
        let pos = if src.starts_with('\u{feff}') { 3 } else { 0 };
        Parser { file, src, bytes: src.as_bytes(), pos, line_starts, sections: Vec::new(), brackets: Vec::new() }
    }

    // ---- positions and errors ----

    /// 1-based line and column (in characters) of a byte offset.
    fn line_col(&self, pos: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= pos).max(1);
        let start = self.line_starts[line - 1];
        let column = self.src[start..pos].chars().count() + 1;
        (line, column)
    }

    fn err(&self, pos: usize, message: impl Into<String>) -> ParseError {
        let (line, column) = self.line_col(pos);
        let start = self.line_starts[line - 1];
        let end = self.src[start..].find('\n').map_or(self.src.len(), |i| start + i);
        ParseError {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
            line_text: self.src[start..end].trim_end_matches('\r').to_string(),
        }
    }

    /// What is at the current position, for messages: `` `word` ``, `` `c` ``, "end of line".
    fn describe(&self) -> String {
        match self.peek() {
            None => "end of file".to_string(),
            Some(b'\n') | Some(b'\r') => "end of line".to_string(),
            Some(c) if is_word_char(c) => {
                let end = self.bytes[self.pos..]
                    .iter()
                    .position(|&b| !is_word_char(b))
                    .map_or(self.bytes.len(), |i| self.pos + i);
                format!("`{}`", &self.src[self.pos..end])
            }
            Some(_) => format!("`{}`", self.src[self.pos..].chars().next().unwrap_or('?')),
        }
    }

    /// An error "expected X, found Y" at the current position.
    fn expected(&self, what: &str) -> ParseError {
        self.err(self.pos, format!("expected {what}, found {}", self.describe()))
    }

    // ---- characters ----

    fn eof(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    fn starts_with(&self, s: &str) -> bool {
        self.bytes[self.pos..].starts_with(s.as_bytes())
    }

    /// Consume `c` if it is next.
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consume `c`, or fail with "expected {what}".
    fn expect(&mut self, c: u8, what: &str) -> PResult<()> {
        if self.eat(c) { Ok(()) } else { Err(self.expected(what)) }
    }

    // ---- blanks and comments ----

    /// Skip blanks and comments, but not newlines (a `/* */` comment may span lines).
    fn skip_inline(&mut self) -> PResult<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\x0c' | b'\x0b') => self.pos += 1,
                Some(b'/') if self.peek_at(1) == Some(b'/') => {
                    self.pos = self.bytes[self.pos..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(self.bytes.len(), |i| self.pos + i);
                }
                Some(b'/') if self.peek_at(1) == Some(b'*') => {
                    let start = self.pos;
                    match self.src[self.pos + 2..].find("*/") {
                        Some(i) => self.pos += 2 + i + 2,
                        None => return Err(self.err(start, "unterminated `/*` comment")),
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Skip blanks, comments and newlines.
    fn skip_all(&mut self) -> PResult<()> {
        loop {
            self.skip_inline()?;
            if !self.eat(b'\n') {
                return Ok(());
            }
        }
    }

    /// Inside brackets: skip blanks, comments and newlines; the end of the file means the
    /// innermost bracket is never closed.
    fn skip_nl(&mut self) -> PResult<()> {
        self.skip_all()?;
        match self.brackets.last() {
            Some(&open) if self.eof() => {
                let c = self.src[open..].chars().next().unwrap_or('?');
                Err(self.err(open, format!("`{c}` is never closed")))
            }
            _ => Ok(()),
        }
    }

    /// Consume the opening bracket at the current position.
    fn open_bracket(&mut self) {
        self.brackets.push(self.pos);
        self.pos += 1;
    }

    /// Consume `close` if it is next, ending the innermost bracket.
    fn close_bracket(&mut self, close: u8) -> bool {
        let closed = self.eat(close);
        if closed {
            self.brackets.pop();
        }
        closed
    }

    /// After an event or directive: only blanks and comments may remain on the line.
    fn end_of_line(&mut self) -> PResult<()> {
        self.skip_inline()?;
        match self.peek() {
            None | Some(b'\n') => Ok(()),
            _ => Err(self.err(self.pos, format!("unexpected {}: expected the end of the line", self.describe()))),
        }
    }

    // ---- words and numbers ----

    /// The identifier at the current position (`[A-Za-z_][A-Za-z0-9_]*`), not consumed.
    fn peek_word(&self) -> Option<&'a str> {
        let c = self.peek()?;
        if !is_word_start(c) {
            return None;
        }
        let len = self.bytes[self.pos..].iter().position(|&b| !is_word_char(b)).unwrap_or(self.bytes.len() - self.pos);
        Some(&self.src[self.pos..self.pos + len])
    }

    /// Consume and return the identifier at the current position.
    fn word(&mut self) -> Option<&'a str> {
        let w = self.peek_word()?;
        self.pos += w.len();
        Some(w)
    }

    /// Consume the identifier or fail with "expected {what}".
    fn expect_word(&mut self, what: &str) -> PResult<&'a str> {
        self.word().ok_or_else(|| self.expected(what))
    }

    /// If the next word (after blanks on this line) is `kw`, consume it and return true;
    /// otherwise consume nothing.
    fn try_keyword(&mut self, kw: &str) -> PResult<bool> {
        let save = self.pos;
        self.skip_inline()?;
        if self.peek_word() == Some(kw) {
            self.pos += kw.len();
            Ok(true)
        } else {
            self.pos = save;
            Ok(false)
        }
    }

    /// If the next character (after blanks on this line) is `c`, leave the position on it and
    /// return true; otherwise consume nothing.
    fn next_is(&mut self, c: u8) -> PResult<bool> {
        let save = self.pos;
        self.skip_inline()?;
        if self.peek() == Some(c) {
            Ok(true)
        } else {
            self.pos = save;
            Ok(false)
        }
    }

    /// An unsigned integer, decimal or `0x` hex, no larger than `max`.
    fn uint(&mut self, what: &str, max: u64) -> PResult<u64> {
        let start = self.pos;
        let (digits, radix) = if self.starts_with("0x") || self.starts_with("0X") {
            self.pos += 2;
            (self.bytes[self.pos..].iter().take_while(|b| b.is_ascii_hexdigit()).count(), 16)
        } else {
            (self.bytes[self.pos..].iter().take_while(|b| b.is_ascii_digit()).count(), 10)
        };
        if digits == 0 {
            self.pos = start;
            return Err(self.expected(what));
        }
        let text = &self.src[self.pos..self.pos + digits];
        self.pos += digits;
        if self.peek().is_some_and(is_word_char) {
            return Err(self.err(start, format!("malformed number `{}` (expected {what})", self.token_from(start))));
        }
        match u64::from_str_radix(text, radix) {
            Ok(v) if v <= max => Ok(v),
            _ => Err(self.err(start, format!("{what} `{}` is out of range (at most {max})", self.token_from(start)))),
        }
    }

    /// The number-like token starting at `start` (for messages).
    fn token_from(&self, start: usize) -> &'a str {
        let len = self.bytes[start..].iter().position(|&b| !is_word_char(b)).unwrap_or(self.bytes.len() - start);
        &self.src[start..start + len]
    }

    fn u32(&mut self, what: &str) -> PResult<u32> {
        Ok(self.uint(what, u32::MAX.into())? as u32)
    }

    fn u16(&mut self, what: &str) -> PResult<u16> {
        Ok(self.uint(what, u16::MAX.into())? as u16)
    }

    fn u8(&mut self, what: &str) -> PResult<u8> {
        Ok(self.uint(what, u8::MAX.into())? as u8)
    }

    // ---- the script ----

    fn script(mut self) -> PResult<Script> {
        let mut script = Script::default();
        loop {
            self.skip_all()?;
            let Some(c) = self.peek() else { break };
            if self.starts_with("--") {
                if !script.events.is_empty() || script.init_command.is_some() {
                    return Err(self.err(self.pos, "command-line options must come before the first event"));
                }
                script.options.push(self.option()?);
            } else if c == b'#' {
                self.directive()?;
            } else if c == b'`' {
                let start = self.pos;
                let text = self.backticks()?;
                self.end_of_line()?;
                if !script.events.is_empty() {
                    script.cleanup_command = Some(text);
                    self.skip_all()?;
                    if !self.eof() {
                        return Err(self.err(
                            start,
                            "a command without a time must come before the first event or be the last thing in the script",
                        ));
                    }
                } else if script.init_command.is_none() {
                    script.init_command = Some(text);
                } else {
                    return Err(self.err(start, "only one command without a time may come before the first event"));
                }
            } else {
                script.events.push(self.event()?);
            }
        }
        if let Some(open) = self.sections.last() {
            let directive = if open.condition.defined != open.has_else { "#ifdef" } else { "#ifndef" };
            return Err(
                self.err(open.pos, format!("`{directive} {}` is never closed by `#endif`", open.condition.symbol))
            );
        }
        Ok(script)
    }

    /// `--name` or `--name=value`.
    fn option(&mut self) -> PResult<(String, Option<String>)> {
        self.pos += 2;
        let start = self.pos;
        let name_len = self.bytes[start..].iter().take_while(|&&b| is_word_char(b) || b == b'-').count();
        if name_len == 0 {
            return Err(self.expected("an option name after `--`"));
        }
        self.pos += name_len;
        let name = self.src[start..self.pos].to_string();
        let value = if self.eat(b'=') {
            let vstart = self.pos;
            let len = self.bytes[vstart..].iter().take_while(|b| !b.is_ascii_whitespace()).count();
            self.pos += len;
            Some(self.src[vstart..self.pos].to_string())
        } else {
            None
        };
        match self.peek() {
            None => Ok((name, value)),
            Some(c) if c.is_ascii_whitespace() => Ok((name, value)),
            _ => Err(self.err(self.pos, format!("unexpected {} in option `--{name}`", self.describe()))),
        }
    }

    /// `#ifdef SYM`, `#ifndef SYM`, `#else`, `#endif`.
    fn directive(&mut self) -> PResult<()> {
        let start = self.pos;
        self.pos += 1;
        let name = self.expect_word("a directive after `#` (#ifdef, #ifndef, #else or #endif)")?;
        match name {
            "ifdef" | "ifndef" => {
                self.skip_inline()?;
                let symbol = self.expect_word(&format!("a symbol after `#{name}`"))?.to_string();
                let condition = Condition { symbol, defined: name == "ifdef" };
                self.sections.push(OpenSection { condition, pos: start, has_else: false });
            }
            "else" => {
                let Some(open) = self.sections.last_mut() else {
                    return Err(self.err(start, "`#else` without `#ifdef` or `#ifndef`"));
                };
                if open.has_else {
                    return Err(self.err(start, "a second `#else` in the same `#ifdef` section"));
                }
                open.has_else = true;
                open.condition.defined = !open.condition.defined;
            }
            "endif" => {
                if self.sections.pop().is_none() {
                    return Err(self.err(start, "`#endif` without `#ifdef` or `#ifndef`"));
                }
            }
            other => {
                return Err(
                    self.err(start, format!("unknown directive `#{other}` (known: #ifdef, #ifndef, #else, #endif)"))
                );
            }
        }
        self.end_of_line()
    }

    // ---- events ----

    fn event(&mut self) -> PResult<Event> {
        let start = self.pos;
        let time = self.time_spec()?;
        self.skip_inline()?;
        let kind = match self.peek() {
            Some(b'<' | b'>') => EventKind::Packet(self.packet()?),
            Some(b'`') => EventKind::Shell(self.backticks()?),
            Some(b'%') if self.peek_at(1) == Some(b'{') => EventKind::Python(self.python()?),
            Some(c) if is_word_start(c) => EventKind::Syscall(self.syscall()?),
            _ => {
                return Err(self.expected(
                    "a packet (`<` or `>`), a system call, a `shell command` or a %{ python }% block after the time",
                ));
            }
        };
        let end = self.pos;
        self.end_of_line()?;
        let (line, column) = self.line_col(start);
        Ok(Event {
            line,
            column,
            time,
            kind,
            conditions: self.sections.iter().map(|s| s.condition.clone()).collect(),
            source: self.src[start..end].to_string(),
        })
    }

    /// `0.1`, `+0.1`, `*`, `a~b`, `a...b`.
    fn time_spec(&mut self) -> PResult<TimeSpec> {
        let kind = self.time_point("a time (`0.1`, `+0.1` or `*`) at the start of the event")?;
        let save = self.pos;
        self.skip_inline()?;
        let end = if self.eat(b'~') {
            self.skip_inline()?;
            Some(TimeEnd::Range(self.time_point("the end of the time range after `~`")?))
        } else if self.starts_with("...") {
            self.pos += 3;
            self.skip_inline()?;
            Some(TimeEnd::Blocking(self.time_point("the end time of the blocking call after `...`")?))
        } else {
            self.pos = save;
            None
        };
        if let Some(TimeEnd::Range(TimeKind::Any) | TimeEnd::Blocking(TimeKind::Any)) = end {
            return Err(self.err(self.pos - 1, "`*` cannot end a time range"));
        }
        Ok(TimeSpec { kind, end })
    }

    fn time_point(&mut self, what: &str) -> PResult<TimeKind> {
        if self.eat(b'*') {
            return Ok(TimeKind::Any);
        }
        let relative = self.eat(b'+');
        if relative {
            self.skip_inline()?;
        }
        let start = self.pos;
        let int_len = self.bytes[start..].iter().take_while(|b| b.is_ascii_digit()).count();
        let has_frac = self.bytes.get(start + int_len) == Some(&b'.')
            && self.bytes.get(start + int_len + 1).is_some_and(|b| b.is_ascii_digit());
        if int_len == 0 && !has_frac {
            return Err(self.expected(what));
        }
        self.pos += int_len;
        let mut micros: i64 = 0;
        for &d in &self.bytes[start..start + int_len] {
            micros = micros
                .checked_mul(10)
                .and_then(|m| m.checked_add(i64::from(d - b'0')))
                .filter(|m| *m <= i64::MAX / 1_000_000)
                .ok_or_else(|| self.err(start, "time is too large"))?;
        }
        micros *= 1_000_000;
        if has_frac {
            self.pos += 1;
            let frac_start = self.pos;
            let frac_len = self.bytes[frac_start..].iter().take_while(|b| b.is_ascii_digit()).count();
            self.pos += frac_len;
            let digits = &self.bytes[frac_start..frac_start + frac_len];
            let mut frac: i64 = 0;
            for i in 0..6 {
                frac = frac * 10 + digits.get(i).map_or(0, |d| i64::from(d - b'0'));
            }
            if digits.get(6).is_some_and(|d| *d >= b'5') {
                frac += 1; // round to the nearest microsecond
            }
            micros += frac;
        }
        if self.peek().is_some_and(is_word_char) {
            let len = self.bytes[start..].iter().take_while(|&&b| is_word_char(b) || b == b'.').count();
            return Err(self.err(start, format!("malformed time `{}`", &self.src[start..start + len])));
        }
        Ok(if relative { TimeKind::Relative(micros) } else { TimeKind::Absolute(micros) })
    }

    /// `` `text` ``: the text between the backticks, verbatim.
    fn backticks(&mut self) -> PResult<String> {
        let start = self.pos;
        self.pos += 1;
        match self.src[self.pos..].find('`') {
            Some(i) => {
                let text = self.src[self.pos..self.pos + i].to_string();
                self.pos += i + 1;
                Ok(text)
            }
            None => Err(self.err(start, "unterminated shell command: no closing backtick")),
        }
    }

    /// `%{ code }%`: the code, blanks trimmed.
    fn python(&mut self) -> PResult<String> {
        let start = self.pos;
        self.pos += 2;
        match self.src[self.pos..].find("}%") {
            Some(i) => {
                let text = self.src[self.pos..self.pos + i].trim().to_string();
                self.pos += i + 2;
                Ok(text)
            }
            None => Err(self.err(start, "unterminated `%{` block: no closing `}%`")),
        }
    }

    // ---- packets ----

    fn packet(&mut self) -> PResult<PacketEvent> {
        let direction = if self.eat(b'<') { Direction::Inbound } else { Direction::Outbound };
        if direction == Direction::Outbound {
            self.pos += 1;
        }
        let mut ecn = None;
        let mut ip = IpFields::default();
        loop {
            self.skip_inline()?;
            match self.peek() {
                Some(b'[') => {
                    let start = self.pos;
                    self.pos += 1;
                    self.skip_inline()?;
                    let name_pos = self.pos;
                    let value = match self.expect_word("an ECN codepoint (noecn, ect0, ect1, ect01, ce)")? {
                        "noecn" => Ecn::NotEct,
                        "ect0" => Ecn::Ect0,
                        "ect1" => Ecn::Ect1,
                        "ect01" => Ecn::Ect01,
                        "ce" => Ecn::Ce,
                        other => {
                            return Err(self.err(
                                name_pos,
                                format!("unknown ECN codepoint `{other}` (known: noecn, ect0, ect1, ect01, ce)"),
                            ));
                        }
                    };
                    self.skip_inline()?;
                    self.expect(b']', "`]` after the ECN codepoint")?;
                    if ecn.replace(value).is_some() {
                        return Err(self.err(start, "the ECN codepoint is given twice"));
                    }
                }
                Some(b'(') => {
                    self.open_bracket();
                    self.ip_fields(&mut ip)?;
                }
                _ => break,
            }
        }
        let transport = match self.peek_word() {
            Some("icmp") => {
                self.pos += 4;
                Transport::Icmp(self.icmp()?)
            }
            Some("udp") => {
                self.pos += 3;
                Transport::Udp(self.udp()?)
            }
            _ => Transport::Tcp(self.tcp()?),
        };
        let udp_encap = if self.next_is(b'/')? {
            let slash = self.pos;
            self.pos += 1;
            if self.word() != Some("udp") {
                return Err(self.err(slash, "expected `/udp(src > dst)` after the packet"));
            }
            self.skip_inline()?;
            self.expect(b'(', "`(` after `/udp`")?;
            self.skip_inline()?;
            let src_port = self.u16("the UDP source port")?;
            self.skip_inline()?;
            self.expect(b'>', "`>` between the UDP ports")?;
            self.skip_inline()?;
            let dst_port = self.u16("the UDP destination port")?;
            self.skip_inline()?;
            self.expect(b')', "`)` after the UDP ports")?;
            Some(UdpEncap { src_port, dst_port })
        } else {
            None
        };
        Ok(PacketEvent { direction, ecn, ip, transport, udp_encap })
    }

    /// After `(`: `tos 0x28`, `ttl 64`, `class 0x28`, `hlim 64`, comma-separated, then `)`.
    fn ip_fields(&mut self, ip: &mut IpFields) -> PResult<()> {
        loop {
            self.skip_nl()?;
            let name_pos = self.pos;
            let name = self.expect_word("an IP header field (tos, ttl, class, hlim)")?;
            self.skip_nl()?;
            let value = self.u8(&format!("the value of `{name}`"))?;
            let slot = match name {
                "tos" => &mut ip.tos,
                "ttl" => &mut ip.ttl,
                "class" => &mut ip.traffic_class,
                "hlim" => &mut ip.hop_limit,
                other => {
                    return Err(
                        self.err(name_pos, format!("unknown IP header field `{other}` (known: tos, ttl, class, hlim)"))
                    );
                }
            };
            if slot.replace(value).is_some() {
                return Err(self.err(name_pos, format!("IP header field `{name}` is given twice")));
            }
            self.skip_nl()?;
            if self.close_bracket(b')') {
                return Ok(());
            }
            self.expect(b',', "`,` or `)` after the IP header field")?;
        }
    }

    /// `S. 0:0(0)! ack 1 win 65535 urg 0 <options>`.
    fn tcp(&mut self) -> PResult<TcpSpec> {
        let flags = self.tcp_flags()?;
        self.skip_inline()?;
        let (seq, len) = self.seq_and_len()?;
        let seq_absolute = self.eat(b'!');
        let (mut ack, mut win, mut urg) = (None, None, None);
        loop {
            let save = self.pos;
            self.skip_inline()?;
            let kw_pos = self.pos;
            let (slot, what) = match self.peek_word() {
                Some("ack") => (&mut ack, "the acknowledgment number"),
                Some("win") => (&mut win, "the window"),
                Some("urg") => (&mut urg, "the urgent pointer"),
                _ => {
                    self.pos = save;
                    break;
                }
            };
            let kw = self.word().unwrap_or_default();
            self.skip_inline()?;
            let value = self.u32(&format!("{what} after `{kw}`"))?;
            if slot.replace(value).is_some() {
                return Err(self.err(kw_pos, format!("`{kw}` is given twice")));
            }
        }
        let options = if self.next_is(b'<')? { Some(self.tcp_options()?) } else { None };
        Ok(TcpSpec { flags, seq, len, seq_absolute, ack, win, urg, options })
    }

    /// `S`, `S.`, `.`, `FP.`, `SEW`, ...
    fn tcp_flags(&mut self) -> PResult<TcpFlags> {
        let start = self.pos;
        let mut bits = 0u8;
        while let Some(c) = self.peek() {
            if c == b'.' && self.starts_with("...") {
                break;
            }
            if !(c.is_ascii_alphabetic() || c == b'.') {
                break;
            }
            let Some(bit) = TcpFlags::bit_of(c as char) else {
                if self.pos == start {
                    return Err(self.expected("TCP flags (S F R P U E W, `.` for ACK), `icmp` or `udp`"));
                }
                return Err(self.err(
                    self.pos,
                    format!("unknown TCP flag `{}` (flags are S F R P U E W and `.` for ACK)", c as char),
                ));
            };
            if bits & bit != 0 {
                return Err(self.err(self.pos, format!("TCP flag `{}` is given twice", c as char)));
            }
            bits |= bit;
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.expected("TCP flags (S F R P U E W, `.` for ACK), `icmp` or `udp`"));
        }
        Ok(TcpFlags(bits))
    }

    /// `start:end(len)` or `...(len)`.
    fn seq_and_len(&mut self) -> PResult<(SeqSpec, u32)> {
        let start_pos = self.pos;
        let seq = if self.starts_with("...") {
            self.pos += 3;
            SeqSpec::Any
        } else {
            let start = self.u32("the sequence numbers `start:end(len)`")?;
            self.expect(b':', "`:` after the start sequence number")?;
            let end = self.u32("the end sequence number after `:`")?;
            SeqSpec::Range { start, end }
        };
        self.expect(b'(', "`(` and the payload length after the sequence numbers")?;
        self.skip_inline()?;
        let len = self.u32("the payload length")?;
        self.skip_inline()?;
        self.expect(b')', "`)` after the payload length")?;
        if let SeqSpec::Range { start, end } = seq
            && end.wrapping_sub(start) != len
        {
            return Err(self.err(
                start_pos,
                format!(
                    "the sequence range {start}:{end} spans {} bytes, but the length is {len}",
                    end.wrapping_sub(start)
                ),
            ));
        }
        Ok((seq, len))
    }

    /// `<...>` or `<opt, opt, ...>`.
    fn tcp_options(&mut self) -> PResult<TcpOptions> {
        self.open_bracket();
        self.skip_nl()?;
        if self.starts_with("...") {
            self.pos += 3;
            self.skip_nl()?;
            if !self.close_bracket(b'>') {
                return Err(self.expected("`>` after `<...`"));
            }
            return Ok(TcpOptions::Any);
        }
        let mut list = Vec::new();
        if self.close_bracket(b'>') {
            return Ok(TcpOptions::List(list));
        }
        loop {
            self.skip_nl()?;
            list.push(self.tcp_option()?);
            self.skip_nl()?;
            if self.close_bracket(b'>') {
                return Ok(TcpOptions::List(list));
            }
            self.expect(b',', "`,` or `>` after the TCP option")?;
        }
    }

    fn tcp_option(&mut self) -> PResult<TcpOption> {
        let pos = self.pos;
        let name = self.expect_word("a TCP option (mss, wscale, sackOK, sack, TS, nop, eol, md5)")?;
        Ok(match name {
            "nop" => TcpOption::Nop,
            "eol" => TcpOption::Eol,
            "sackOK" => TcpOption::SackPermitted,
            "mss" => {
                self.skip_nl()?;
                TcpOption::Mss(self.u16("the MSS value after `mss`")?)
            }
            "wscale" => {
                self.skip_nl()?;
                TcpOption::WindowScale(self.u8("the shift count after `wscale`")?)
            }
            "sack" => {
                let mut blocks = Vec::new();
                loop {
                    let save = self.pos;
                    self.skip_nl()?;
                    if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.pos = save;
                        break;
                    }
                    let left = self.u32("the left edge of the SACK block")?;
                    self.expect(b':', "`:` between the edges of the SACK block")?;
                    let right = self.u32("the right edge of the SACK block")?;
                    blocks.push((left, right));
                }
                TcpOption::Sack(blocks)
            }
            "TS" => {
                self.skip_nl()?;
                if self.word() != Some("val") {
                    return Err(self.err(self.pos, "expected `val` after `TS` (`TS val N ecr N`)"));
                }
                self.skip_nl()?;
                let val = self.u32("the TSval after `val`")?;
                self.skip_nl()?;
                if self.word() != Some("ecr") {
                    return Err(self.err(self.pos, "expected `ecr` after the TSval (`TS val N ecr N`)"));
                }
                self.skip_nl()?;
                let ecr = self.u32("the TSecr after `ecr`")?;
                TcpOption::Timestamp { val, ecr }
            }
            "md5" => {
                self.skip_nl()?;
                let vpos = self.pos;
                match self.word() {
                    Some("valid") => TcpOption::Md5 { valid: true },
                    Some("invalid") => TcpOption::Md5 { valid: false },
                    _ => return Err(self.err(vpos, "expected `valid` or `invalid` after `md5`")),
                }
            }
            other => {
                return Err(self.err(
                    pos,
                    format!("unknown TCP option `{other}` (known: mss, wscale, sackOK, sack, TS, nop, eol, md5)"),
                ));
            }
        })
    }

    /// After `icmp`: `type [code] [mtu N] [[start:end(len)]]`.
    fn icmp(&mut self) -> PResult<IcmpSpec> {
        self.skip_inline()?;
        let icmp_type = self.expect_word("the ICMP type (unreachable, time_exceeded, ...) after `icmp`")?.to_string();
        let save = self.pos;
        self.skip_inline()?;
        let code = match self.peek_word() {
            Some(w) if w != "mtu" => {
                self.pos += w.len();
                Some(w.to_string())
            }
            _ => {
                self.pos = save;
                None
            }
        };
        let mtu = if self.try_keyword("mtu")? {
            self.skip_inline()?;
            Some(self.u32("the MTU after `mtu`")?)
        } else {
            None
        };
        let quoted = if self.next_is(b'[')? {
            self.open_bracket();
            self.skip_nl()?;
            let (seq, len) = self.seq_and_len()?;
            self.skip_nl()?;
            if !self.close_bracket(b']') {
                return Err(self.expected("`]` after the quoted segment"));
            }
            Some(QuotedSegment { seq, len })
        } else {
            None
        };
        Ok(IcmpSpec { icmp_type, code, mtu, quoted })
    }

    /// After `udp`: `(len)`.
    fn udp(&mut self) -> PResult<UdpSpec> {
        self.skip_inline()?;
        self.expect(b'(', "`(` and the payload length after `udp`")?;
        self.skip_inline()?;
        let len = self.u32("the UDP payload length")?;
        self.skip_inline()?;
        self.expect(b')', "`)` after the UDP payload length")?;
        Ok(UdpSpec { len })
    }

    // ---- system calls ----

    /// `name(args) = ret [ERRNO] [(note)]`.
    fn syscall(&mut self) -> PResult<Syscall> {
        let name = self.word().unwrap_or_default().to_string();
        self.skip_inline()?;
        if self.peek() != Some(b'(') {
            return Err(self.expected(&format!("`(` after the system call name `{name}`")));
        }
        self.open_bracket();
        let args = self.expr_list(b')')?;
        self.skip_inline()?;
        self.expect(b'=', "`=` and the expected return value after the system call")?;
        self.skip_inline()?;
        let ret = self.expr(false)?;
        let save = self.pos;
        self.skip_inline()?;
        let errno = match self.peek() {
            Some(c) if c.is_ascii_uppercase() => self.word().map(str::to_string),
            _ => {
                self.pos = save;
                None
            }
        };
        let note = if self.next_is(b'(')? { Some(self.note()?) } else { None };
        Ok(Syscall { name, args, ret, errno, note })
    }

    /// `(free text)` after the return value, on one line, parentheses balanced.
    fn note(&mut self) -> PResult<String> {
        let start = self.pos;
        self.pos += 1;
        let mut depth = 1;
        while let Some(c) = self.peek() {
            match c {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        let text = self.src[start + 1..self.pos].trim().to_string();
                        self.pos += 1;
                        return Ok(text);
                    }
                }
                b'\n' => break,
                _ => {}
            }
            self.pos += 1;
        }
        Err(self.err(start, "unclosed `(` in the comment after the return value"))
    }

    /// The open bracket has been consumed: `expr, expr, ... close`.
    fn expr_list(&mut self, close: u8) -> PResult<Vec<Expr>> {
        let mut items = Vec::new();
        self.skip_nl()?;
        if self.close_bracket(close) {
            return Ok(items);
        }
        loop {
            items.push(self.expr(true)?);
            self.skip_nl()?;
            if self.close_bracket(close) {
                return Ok(items);
            }
            self.expect(b',', &format!("`,` or `{}`", close as char))?;
            self.skip_nl()?;
        }
    }

    /// `primary | primary | ...`. Inside brackets (`nested`), blanks may include newlines and
    /// `name(...)` is a call; a return value ends at the end of its line and a word followed
    /// by `(` is a symbol followed by a comment.
    fn expr(&mut self, nested: bool) -> PResult<Expr> {
        let mut parts = vec![self.primary(nested)?];
        loop {
            let save = self.pos;
            if nested {
                self.skip_nl()?;
            } else {
                self.skip_inline()?;
            }
            if !self.eat(b'|') {
                self.pos = save;
                break;
            }
            if nested {
                self.skip_nl()?;
            } else {
                self.skip_inline()?;
            }
            parts.push(self.primary(nested)?);
        }
        Ok(if parts.len() == 1 { parts.pop().unwrap_or(Expr::Ellipsis) } else { Expr::BitOr(parts) })
    }

    fn primary(&mut self, nested: bool) -> PResult<Expr> {
        const WHAT: &str = "an expression (`...`, a number, a \"string\", a SYMBOL, an [array] or a {struct})";
        match self.peek() {
            Some(b'.') if self.starts_with("...") => {
                self.pos += 3;
                Ok(Expr::Ellipsis)
            }
            Some(b'-') if self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) => {
                self.pos += 1;
                let v = self.uint("a number after `-`", 1 << 63)?;
                Ok(Expr::Int((v as i64).wrapping_neg()))
            }
            Some(c) if c.is_ascii_digit() => Ok(Expr::Int(self.uint("a number", i64::MAX as u64)? as i64)),
            Some(b'"') => self.string().map(Expr::Str),
            Some(b'[') => {
                self.open_bracket();
                self.expr_list(b']').map(Expr::Array)
            }
            Some(b'{') => self.structure(),
            Some(c) if is_word_start(c) => {
                let name = self.word().unwrap_or_default().to_string();
                if nested && self.next_is(b'(')? {
                    self.open_bracket();
                    let args = self.expr_list(b')')?;
                    Ok(Expr::Call(name, args))
                } else {
                    Ok(Expr::Symbol(name))
                }
            }
            _ => Err(self.expected(WHAT)),
        }
    }

    /// `{name=value, ...}`.
    fn structure(&mut self) -> PResult<Expr> {
        self.open_bracket();
        let mut fields = Vec::new();
        self.skip_nl()?;
        if self.close_bracket(b'}') {
            return Ok(Expr::Struct(fields));
        }
        loop {
            let name = self.expect_word("a field name in the struct")?.to_string();
            self.skip_nl()?;
            self.expect(b'=', &format!("`=` after the field name `{name}`"))?;
            self.skip_nl()?;
            let value = self.expr(true)?;
            fields.push((name, value));
            self.skip_nl()?;
            if self.close_bracket(b'}') {
                return Ok(Expr::Struct(fields));
            }
            self.expect(b',', "`,` or `}` in the struct")?;
            self.skip_nl()?;
        }
    }

    /// `"text"` with `\" \\ \n \t \r \0 \xNN` escapes.
    fn string(&mut self) -> PResult<String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.src[self.pos..].chars().next() else {
                return Err(self.err(start, "unterminated string"));
            };
            match c {
                '"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                '\n' => return Err(self.err(start, "unterminated string")),
                '\\' => {
                    let esc_pos = self.pos;
                    self.pos += 1;
                    let e = self.peek().ok_or_else(|| self.err(start, "unterminated string"))?;
                    self.pos += 1;
                    out.push(match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'0' => '\0',
                        b'x' => {
                            let hex = self.src.get(self.pos..self.pos + 2).unwrap_or("");
                            let v = u8::from_str_radix(hex, 16)
                                .map_err(|_| self.err(esc_pos, "expected two hex digits after `\\x`"))?;
                            self.pos += 2;
                            char::from(v)
                        }
                        _ => return Err(self.err(esc_pos, "unknown escape in string")),
                    });
                }
                c => {
                    out.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }
}
