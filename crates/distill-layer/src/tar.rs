//! The tar format, byte for byte: headers written the way Go's `archive/tar` writes them for
//! containerd and BuildKit (`Format: PAX`), and a strict streaming reader.
//!
//! Writing: a header is a plain USTAR block (the path split into `prefix`/`name` when it is too
//! long for `name`) unless some field cannot be said in USTAR or the entry has xattrs; then a PAX
//! extended header (`x`, named `<dir>/PaxHeaders.0/<file>`, records sorted by key) comes first and
//! the USTAR block carries what fits. Numbers are zero-padded octal ending in NUL, the checksum is
//! six digits, NUL, space; `uname`/`gname` are empty; an archive ends with two zero blocks and no
//! record padding. Identical input gives identical bytes, which is what makes diff IDs stable.
//!
//! Reading: [`TarReader`] yields one [`EntryHeader`] at a time and streams its data; it applies PAX
//! (`path`, `linkpath`, `size`, `uid`, `gid`, `mtime`, `SCHILY.xattr.*`) and GNU long names,
//! checks every checksum, and refuses what it does not understand (sparse files, unknown types)
//! instead of guessing. It never holds more than one entry's metadata in memory.

use std::fmt;
use std::io::{self, Read, Write};

use crate::error::LayerError;

/// Size of a tar block.
pub const BLOCK: usize = 512;

/// Longest PAX or GNU long-name payload we accept, like Go's reader.
const MAX_SPECIAL_FILE: u64 = 1 << 20;

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// A hard link to the earlier entry named by [`EntryHeader::link_target`].
    Hardlink,
    CharDevice,
    BlockDevice,
    Fifo,
}

impl EntryKind {
    fn typeflag(self) -> u8 {
        match self {
            EntryKind::File => b'0',
            EntryKind::Hardlink => b'1',
            EntryKind::Symlink => b'2',
            EntryKind::CharDevice => b'3',
            EntryKind::BlockDevice => b'4',
            EntryKind::Dir => b'5',
            EntryKind::Fifo => b'6',
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryKind::File => "file",
            EntryKind::Dir => "directory",
            EntryKind::Symlink => "symlink",
            EntryKind::Hardlink => "hardlink",
            EntryKind::CharDevice => "character device",
            EntryKind::BlockDevice => "block device",
            EntryKind::Fifo => "fifo",
        })
    }
}

/// One entry's metadata, independent of how the archive spelled it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryHeader {
    /// Path inside the layer, `/`-separated, without a leading `/` or `./` and without the
    /// trailing `/` of directories (the writer adds it). As read, it is exactly what the archive
    /// said minus a directory's trailing `/`: the extractor validates it.
    pub path: Vec<u8>,
    pub kind: EntryKind,
    /// The symlink's target, or the path of the entry a hardlink points to; empty otherwise.
    pub link_target: Vec<u8>,
    /// Permission bits with setuid, setgid and sticky (`0o7777` at most), no file type bits.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Length of the data that follows; zero for everything but files.
    pub size: u64,
    /// Modification time, whole seconds since the Unix epoch.
    pub mtime: i64,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// Extended attributes as `(name, value)`, sorted by name.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl EntryHeader {
    /// A header of `kind` at `path` with everything else zero or empty.
    pub fn new(path: impl Into<Vec<u8>>, kind: EntryKind) -> EntryHeader {
        EntryHeader {
            path: path.into(),
            kind,
            link_target: Vec::new(),
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            dev_major: 0,
            dev_minor: 0,
            xattrs: Vec::new(),
        }
    }

    /// The path for messages.
    pub fn display_path(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Field offsets and sizes of a USTAR block.
mod field {
    pub const NAME: (usize, usize) = (0, 100);
    pub const MODE: (usize, usize) = (100, 8);
    pub const UID: (usize, usize) = (108, 8);
    pub const GID: (usize, usize) = (116, 8);
    pub const SIZE: (usize, usize) = (124, 12);
    pub const MTIME: (usize, usize) = (136, 12);
    pub const CHKSUM: (usize, usize) = (148, 8);
    pub const TYPEFLAG: usize = 156;
    pub const LINKNAME: (usize, usize) = (157, 100);
    pub const MAGIC: (usize, usize) = (257, 6);
    pub const VERSION: (usize, usize) = (263, 2);
    pub const UNAME: (usize, usize) = (265, 32);
    pub const GNAME: (usize, usize) = (297, 32);
    pub const DEVMAJOR: (usize, usize) = (329, 8);
    pub const DEVMINOR: (usize, usize) = (337, 8);
    pub const PREFIX: (usize, usize) = (345, 155);
}

fn slot(block: &mut [u8; BLOCK], (offset, len): (usize, usize)) -> &mut [u8] {
    &mut block[offset..offset + len]
}

/// Whether `value` fits an octal field of `len` bytes (digits plus a NUL).
fn fits_octal(len: usize, value: i128) -> bool {
    value >= 0 && value < 1i128 << (3 * (len - 1))
}

/// Copies `text` into a field, NUL-terminated when there is room; truncates what is too long,
/// and, like Go, never leaves a trailing `/` in a truncated path.
fn put_string(field: &mut [u8], text: &[u8]) {
    let len = text.len().min(field.len());
    field[..len].copy_from_slice(&text[..len]);
    if text.len() < field.len() {
        field[text.len()] = 0;
    }
    if text.len() > field.len() && field[field.len() - 1] == b'/' {
        let kept = text[..field.len()]
            .iter()
            .rposition(|&byte| byte != b'/')
            .map_or(0, |last| last + 1);
        field[kept] = 0;
    }
}

/// Zero-padded octal ending in NUL; zero when the value does not fit (its PAX record says it).
fn put_octal(field: &mut [u8], value: i128) {
    let value = if fits_octal(field.len(), value) {
        value
    } else {
        0
    };
    let digits = format!("{value:0width$o}", width = field.len() - 1);
    put_string(field, digits.as_bytes());
}

/// Sets the USTAR magic and version, then the checksum (six octal digits, NUL, space).
fn seal(block: &mut [u8; BLOCK]) {
    slot(block, field::MAGIC).copy_from_slice(b"ustar\0");
    slot(block, field::VERSION).copy_from_slice(b"00");
    slot(block, field::CHKSUM).fill(b' ');
    let sum: u32 = block.iter().map(|&byte| u32::from(byte)).sum();
    let chksum = slot(block, field::CHKSUM);
    put_octal(&mut chksum[..7], i128::from(sum));
    chksum[7] = b' ';
}

/// Go's `toASCII`: drops every byte that is not printable-or-control ASCII (and NUL).
fn to_ascii(text: &[u8]) -> Vec<u8> {
    text.iter()
        .copied()
        .filter(|&byte| byte != 0 && byte < 0x80)
        .collect()
}

/// Go's `splitUSTARPath`: a `prefix`/`name` split of a path too long for `name`, if one exists.
fn split_ustar_path(name: &[u8]) -> Option<(&[u8], &[u8])> {
    const NAME_SIZE: usize = 100;
    const PREFIX_SIZE: usize = 155;
    let mut length = name.len();
    if length <= NAME_SIZE || !name.is_ascii() {
        return None;
    } else if length > PREFIX_SIZE + 1 {
        length = PREFIX_SIZE + 1;
    } else if name[length - 1] == b'/' {
        length -= 1;
    }
    let slash = name[..length].iter().rposition(|&byte| byte == b'/')?;
    let suffix_len = name.len() - slash - 1;
    if slash == 0 || suffix_len > NAME_SIZE || suffix_len == 0 || slash > PREFIX_SIZE {
        return None;
    }
    Some((&name[..slash], &name[slash + 1..]))
}

/// One PAX record, `"<len> <key>=<value>\n"` where `<len>` counts the whole record.
fn pax_record(key: &[u8], value: &[u8], out: &mut Vec<u8>) {
    let base = key.len() + value.len() + 3;
    let mut size = base + base.to_string().len();
    if size.to_string().len() + base != size {
        size = base + size.to_string().len();
    }
    out.extend_from_slice(size.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// `path.Join(dir, "PaxHeaders.0", file)` for a clean tar name.
fn pax_header_name(name: &[u8]) -> Vec<u8> {
    let (dir, file) = match name.iter().rposition(|&byte| byte == b'/') {
        Some(slash) => (&name[..slash], &name[slash + 1..]),
        None => (&name[..0], name),
    };
    let mut joined = Vec::with_capacity(name.len() + 14);
    if !dir.is_empty() {
        joined.extend_from_slice(dir.strip_suffix(b"/").unwrap_or(dir));
        joined.push(b'/');
    }
    joined.extend_from_slice(b"PaxHeaders.0");
    if !file.is_empty() {
        joined.push(b'/');
        joined.extend_from_slice(file);
    }
    joined
}

/// Appends the header blocks for `header` (a PAX header and its records first when needed) to
/// `out`. The caller then writes `header.size` bytes of data and [`padding`] zeros.
pub fn encode_header(header: &EntryHeader, out: &mut Vec<u8>) -> Result<(), String> {
    let mut name = header.path.clone();
    if header.kind == EntryKind::Dir {
        name.push(b'/');
    }
    let size = if header.kind == EntryKind::File {
        header.size
    } else {
        0
    };
    if name.contains(&0) || header.link_target.contains(&0) {
        return Err("a path cannot contain a NUL byte".to_string());
    }
    for (label, value) in [
        ("device major", header.dev_major),
        ("device minor", header.dev_minor),
    ] {
        if !fits_octal(8, i128::from(value)) {
            return Err(format!(
                "{label} number {value} is too large for a tar header"
            ));
        }
    }
    if header.mode > 0o7777 {
        return Err(format!("mode {:o} has bits beyond 07777", header.mode));
    }

    // What USTAR cannot carry goes into PAX records, as Go decides it.
    let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut ustar_ok = header.xattrs.is_empty();
    if !name.is_ascii() || name.len() > 100 {
        if split_ustar_path(&name).is_none() {
            ustar_ok = false;
        }
        records.push((b"path".to_vec(), name.clone()));
    }
    if !header.link_target.is_ascii() || header.link_target.len() > 100 {
        ustar_ok = false;
        records.push((b"linkpath".to_vec(), header.link_target.clone()));
    }
    let numbers = [
        ("uid", field::UID.1, i128::from(header.uid)),
        ("gid", field::GID.1, i128::from(header.gid)),
        ("size", field::SIZE.1, i128::from(size)),
        ("mtime", field::MTIME.1, i128::from(header.mtime)),
    ];
    for (key, len, value) in numbers {
        if !fits_octal(len, value) {
            ustar_ok = false;
            records.push((key.as_bytes().to_vec(), value.to_string().into_bytes()));
        }
    }
    for (xattr, value) in &header.xattrs {
        if xattr.is_empty() || xattr.contains(&0) || xattr.contains(&b'=') {
            return Err(format!(
                "xattr name {:?} cannot be stored in a PAX record",
                String::from_utf8_lossy(xattr)
            ));
        }
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(xattr);
        records.push((key, value.clone()));
    }

    let mut block = [0u8; BLOCK];
    if ustar_ok {
        match split_ustar_path(&name) {
            Some((prefix, rest)) => {
                put_string(slot(&mut block, field::NAME), rest);
                put_string(slot(&mut block, field::PREFIX), prefix);
            }
            None => put_string(slot(&mut block, field::NAME), &name),
        }
        put_string(slot(&mut block, field::LINKNAME), &header.link_target);
    } else {
        records.sort();
        let mut data = Vec::new();
        for (key, value) in &records {
            pax_record(key, value, &mut data);
        }
        if data.len() as u64 > MAX_SPECIAL_FILE {
            return Err("PAX records (xattrs) larger than 1 MiB".to_string());
        }
        let mut pax_name = to_ascii(&pax_header_name(&name));
        pax_name.truncate(100);
        while pax_name.last() == Some(&b'/') {
            pax_name.pop();
        }
        let mut pax_block = [0u8; BLOCK];
        put_string(slot(&mut pax_block, field::NAME), &pax_name);
        put_octal(slot(&mut pax_block, field::MODE), 0);
        put_octal(slot(&mut pax_block, field::UID), 0);
        put_octal(slot(&mut pax_block, field::GID), 0);
        put_octal(slot(&mut pax_block, field::SIZE), data.len() as i128);
        put_octal(slot(&mut pax_block, field::MTIME), 0);
        pax_block[field::TYPEFLAG] = b'x';
        seal(&mut pax_block);
        out.extend_from_slice(&pax_block);
        let data_len = data.len() as u64;
        out.extend_from_slice(&data);
        out.resize(out.len() + padding(data_len), 0);

        put_string(slot(&mut block, field::NAME), &to_ascii(&name));
        put_string(
            slot(&mut block, field::LINKNAME),
            &to_ascii(&header.link_target),
        );
    }
    put_octal(slot(&mut block, field::MODE), i128::from(header.mode));
    put_octal(slot(&mut block, field::UID), i128::from(header.uid));
    put_octal(slot(&mut block, field::GID), i128::from(header.gid));
    put_octal(slot(&mut block, field::SIZE), i128::from(size));
    put_octal(slot(&mut block, field::MTIME), i128::from(header.mtime));
    block[field::TYPEFLAG] = header.kind.typeflag();
    put_string(slot(&mut block, field::UNAME), b"");
    put_string(slot(&mut block, field::GNAME), b"");
    put_octal(
        slot(&mut block, field::DEVMAJOR),
        i128::from(header.dev_major),
    );
    put_octal(
        slot(&mut block, field::DEVMINOR),
        i128::from(header.dev_minor),
    );
    seal(&mut block);
    out.extend_from_slice(&block);
    Ok(())
}

/// Zeros needed after `size` bytes of data to reach a block boundary.
pub fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// Writes entries to a tar stream. Entries go out in the order they are appended: sorting is
/// the caller's job (see [`crate::write_tree`]).
pub struct TarWriter<W: Write> {
    inner: W,
    scratch: Vec<u8>,
    copy_buffer: Vec<u8>,
    /// See [`TarWriter::unpacked_size`].
    unpacked_size: u64,
}

impl<W: Write> TarWriter<W> {
    pub fn new(inner: W) -> TarWriter<W> {
        TarWriter {
            inner,
            scratch: Vec::with_capacity(4 * BLOCK),
            copy_buffer: Vec::new(),
            unpacked_size: 0,
        }
    }

    /// The entries' size unpacked, as Docker measures a layer: files' lengths and symlinks'
    /// target lengths (a hardlink adds nothing, nor do directories and devices).
    pub fn unpacked_size(&self) -> u64 {
        self.unpacked_size
    }

    /// Writes `header` and exactly `header.size` bytes read from `data` (for files; other kinds
    /// have no data and `data` is not read). A source shorter or longer than `header.size` is
    /// an error: it changed while being archived.
    pub fn append(&mut self, header: &EntryHeader, mut data: impl Read) -> Result<(), LayerError> {
        self.scratch.clear();
        encode_header(header, &mut self.scratch).map_err(|reason| LayerError::Unrepresentable {
            path: header.display_path(),
            reason,
        })?;
        self.inner
            .write_all(&self.scratch)
            .map_err(LayerError::Write)?;
        self.unpacked_size += match header.kind {
            EntryKind::File => header.size,
            EntryKind::Symlink => header.link_target.len() as u64,
            _ => 0,
        };
        if header.kind != EntryKind::File {
            return Ok(());
        }
        if self.copy_buffer.is_empty() {
            self.copy_buffer = vec![0; 256 * 1024];
        }
        let mut remaining = header.size;
        while remaining > 0 {
            let want = remaining.min(self.copy_buffer.len() as u64) as usize;
            let read = match data.read(&mut self.copy_buffer[..want]) {
                Ok(0) => {
                    return Err(LayerError::Changed {
                        path: header.display_path(),
                        reason: format!(
                        "it became shorter while being archived ({remaining} of {} bytes missing)",
                        header.size
                    ),
                    })
                }
                Ok(read) => read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    return Err(LayerError::Source {
                        path: header.display_path(),
                        source: err,
                    })
                }
            };
            self.inner
                .write_all(&self.copy_buffer[..read])
                .map_err(LayerError::Write)?;
            remaining -= read as u64;
        }
        let mut probe = [0u8; 1];
        loop {
            match data.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => {
                    return Err(LayerError::Changed {
                        path: header.display_path(),
                        reason: format!(
                            "it grew beyond {} bytes while being archived",
                            header.size
                        ),
                    })
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    return Err(LayerError::Source {
                        path: header.display_path(),
                        source: err,
                    })
                }
            }
        }
        let zeros = [0u8; BLOCK];
        self.inner
            .write_all(&zeros[..padding(header.size)])
            .map_err(LayerError::Write)
    }

    /// Writes the end-of-archive marker (two zero blocks) and returns the inner writer.
    pub fn finish(mut self) -> Result<W, LayerError> {
        self.inner
            .write_all(&[0u8; 2 * BLOCK])
            .map_err(LayerError::Write)?;
        Ok(self.inner)
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Reads a tar stream one entry at a time; see the module documentation for what it accepts.
pub struct TarReader<R: Read> {
    inner: R,
    /// Bytes read from `inner` so far, for error messages.
    offset: u64,
    /// Data of the current entry not yet read by the caller, then its padding.
    remaining: u64,
    pending_padding: u64,
    /// Number of entries returned so far.
    entries: u64,
    finished: bool,
}

/// Metadata collected from PAX and GNU headers for the next real entry.
#[derive(Default)]
struct Extensions {
    path: Option<Vec<u8>>,
    link_target: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<i64>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> TarReader<R> {
        TarReader {
            inner,
            offset: 0,
            remaining: 0,
            pending_padding: 0,
            entries: 0,
            finished: false,
        }
    }

    /// The number of entries returned so far (the index of the next one).
    pub fn entries_read(&self) -> u64 {
        self.entries
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    fn malformed(&self, reason: impl Into<String>) -> LayerError {
        LayerError::Malformed {
            offset: self.offset,
            reason: reason.into(),
        }
    }

    /// Reads exactly `buf.len()` bytes; `Ok(false)` on a clean end of stream before the first.
    fn read_block(&mut self, buf: &mut [u8]) -> Result<bool, LayerError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) if filled == 0 => return Ok(false),
                Ok(0) => {
                    return Err(self.malformed(format!(
                        "the archive ends in the middle of a block ({filled} of {} bytes)",
                        buf.len()
                    )))
                }
                Ok(read) => {
                    filled += read;
                    self.offset += read as u64;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(LayerError::Read(err)),
            }
        }
        Ok(true)
    }

    fn skip(&mut self, mut count: u64) -> Result<(), LayerError> {
        let mut buffer = [0u8; 8 * BLOCK];
        while count > 0 {
            let want = count.min(buffer.len() as u64) as usize;
            if !self.read_block(&mut buffer[..want])? {
                return Err(self.malformed("the archive ends inside an entry's data"));
            }
            count -= want as u64;
        }
        Ok(())
    }

    /// Reads a special entry's payload (PAX records, GNU long names).
    fn read_payload(&mut self, size: u64) -> Result<Vec<u8>, LayerError> {
        if size > MAX_SPECIAL_FILE {
            return Err(self.malformed(format!(
                "an extended header of {size} bytes is larger than the 1 MiB we accept"
            )));
        }
        let mut payload = vec![0u8; size as usize];
        if !self.read_block(&mut payload)? {
            return Err(self.malformed("the archive ends inside an extended header"));
        }
        self.skip(padding(size) as u64)?;
        Ok(payload)
    }

    /// Moves to the next entry, skipping what is left of the current one's data. `None` at the
    /// end-of-archive marker (or a clean end of stream).
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_, R>>, LayerError> {
        let header = self.next_header()?;
        Ok(header.map(move |header| Entry {
            header,
            data: EntryData { reader: self },
        }))
    }

    fn next_header(&mut self) -> Result<Option<EntryHeader>, LayerError> {
        if self.finished {
            return Ok(None);
        }
        let leftover = self.remaining + self.pending_padding;
        self.remaining = 0;
        self.pending_padding = 0;
        self.skip(leftover)?;

        let mut extensions = Extensions::default();
        loop {
            let start = self.offset;
            let mut block = [0u8; BLOCK];
            if !self.read_block(&mut block)? {
                self.finished = true;
                return Ok(None);
            }
            if block.iter().all(|&byte| byte == 0) {
                // End of archive: a second zero block should follow, and may be missing.
                let mut second = [0u8; BLOCK];
                if self.read_block(&mut second)? && second.iter().any(|&byte| byte != 0) {
                    return Err(self.malformed("a zero block is followed by data"));
                }
                self.finished = true;
                return Ok(None);
            }
            verify_checksum(&block).map_err(|reason| LayerError::Malformed {
                offset: start,
                reason,
            })?;
            let parsed = parse_block(&block).map_err(|reason| LayerError::Malformed {
                offset: start,
                reason,
            })?;
            match parsed.typeflag {
                b'x' => {
                    let payload = self.read_payload(parsed.size)?;
                    parse_pax(&payload, &mut extensions).map_err(|reason| {
                        LayerError::Malformed {
                            offset: start,
                            reason,
                        }
                    })?;
                    continue;
                }
                b'g' => {
                    // Global PAX headers describe the archive, not entries; Docker ignores them.
                    self.read_payload(parsed.size)?;
                    continue;
                }
                b'L' | b'K' => {
                    let mut payload = self.read_payload(parsed.size)?;
                    if let Some(nul) = payload.iter().position(|&byte| byte == 0) {
                        payload.truncate(nul);
                    }
                    if parsed.typeflag == b'L' {
                        extensions.path = Some(payload);
                    } else {
                        extensions.link_target = Some(payload);
                    }
                    continue;
                }
                _ => {}
            }
            let name = extensions.path.take().unwrap_or(parsed.name);
            let kind = match parsed.typeflag {
                b'0' | b'7' => EntryKind::File,
                b'\0' if name.ends_with(b"/") => EntryKind::Dir,
                b'\0' => EntryKind::File,
                b'1' => EntryKind::Hardlink,
                b'2' => EntryKind::Symlink,
                b'3' => EntryKind::CharDevice,
                b'4' => EntryKind::BlockDevice,
                b'5' => EntryKind::Dir,
                b'6' => EntryKind::Fifo,
                b'S' => {
                    return Err(LayerError::Refused {
                        index: self.entries,
                        path: String::from_utf8_lossy(&name).into_owned(),
                        reason: "GNU sparse files are not supported".to_string(),
                    })
                }
                other => {
                    return Err(LayerError::Refused {
                        index: self.entries,
                        path: String::from_utf8_lossy(&name).into_owned(),
                        reason: format!("unsupported tar entry type {:?}", char::from(other)),
                    })
                }
            };
            let mut path = name;
            if kind == EntryKind::Dir {
                while path.len() > 1 && path.ends_with(b"/") {
                    path.pop();
                }
            }
            let size = extensions.size.unwrap_or(parsed.size);
            // Link, directory, device and fifo entries have no data, whatever `size` says.
            let data_size = match kind {
                EntryKind::File => size,
                _ => 0,
            };
            let mut xattrs = std::mem::take(&mut extensions.xattrs);
            xattrs.sort();
            let header = EntryHeader {
                path,
                kind,
                link_target: extensions.link_target.take().unwrap_or(parsed.link_target),
                mode: (parsed.mode & 0o7777) as u32,
                uid: extensions.uid.unwrap_or(parsed.uid),
                gid: extensions.gid.unwrap_or(parsed.gid),
                size: data_size,
                mtime: extensions.mtime.unwrap_or(parsed.mtime),
                dev_major: u32::try_from(parsed.dev_major).map_err(|_| {
                    self.malformed(format!("device major {} is too large", parsed.dev_major))
                })?,
                dev_minor: u32::try_from(parsed.dev_minor).map_err(|_| {
                    self.malformed(format!("device minor {} is too large", parsed.dev_minor))
                })?,
                xattrs,
            };
            self.remaining = data_size;
            self.pending_padding = padding(data_size) as u64;
            self.entries += 1;
            return Ok(Some(header));
        }
    }

    /// Reads the rest of the stream (past the end-of-archive marker), so that a hashing reader
    /// underneath sees every byte.
    pub fn drain(&mut self) -> Result<(), LayerError> {
        io::copy(&mut self.inner, &mut io::sink()).map_err(LayerError::Read)?;
        Ok(())
    }
}

/// One entry: its header, and its data (exactly `header.size` bytes) through [`Read`] on the
/// entry or on its `data` field (the field lets a caller hold the header while reading).
pub struct Entry<'a, R: Read> {
    pub header: EntryHeader,
    pub data: EntryData<'a, R>,
}

impl<R: Read> Entry<'_, R> {
    /// The index of this entry in the archive, counting from 0 (extended headers not counted).
    pub fn index(&self) -> u64 {
        self.data.reader.entries - 1
    }
}

impl<R: Read> Read for Entry<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.data.read(buf)
    }
}

/// The data of the current entry.
pub struct EntryData<'a, R: Read> {
    reader: &'a mut TarReader<R>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.reader.remaining == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(self.reader.remaining.min(usize::MAX as u64) as usize);
        let read = self.reader.inner.read(&mut buf[..want])?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the archive ends inside this entry's data ({} bytes missing)",
                    self.reader.remaining
                ),
            ));
        }
        self.reader.remaining -= read as u64;
        self.reader.offset += read as u64;
        Ok(read)
    }
}

struct ParsedBlock {
    name: Vec<u8>,
    link_target: Vec<u8>,
    mode: u64,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: i64,
    typeflag: u8,
    dev_major: u64,
    dev_minor: u64,
}

fn field_bytes(block: &[u8; BLOCK], (offset, len): (usize, usize)) -> &[u8] {
    &block[offset..offset + len]
}

/// A NUL-terminated (or full-width) string field.
fn parse_string(field: &[u8]) -> Vec<u8> {
    let end = field
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(field.len());
    field[..end].to_vec()
}

/// An octal field (spaces and NULs around it allowed) or a base-256 one (high bit set).
fn parse_number(field: &[u8], label: &str) -> Result<i128, String> {
    if let Some(&first) = field.first() {
        if first & 0x80 != 0 {
            // Base-256, big-endian two's complement: invert a negative number's bytes, read it
            // as unsigned, and invert back.
            let invert = if first & 0x40 != 0 { 0xff } else { 0x00 };
            let mut magnitude: u64 = 0;
            for (index, &byte) in field.iter().enumerate() {
                let mut byte = byte ^ invert;
                if index == 0 {
                    byte &= 0x7f;
                }
                if magnitude >> 56 != 0 {
                    return Err(format!("{label} field overflows"));
                }
                magnitude = magnitude << 8 | u64::from(byte);
            }
            let magnitude = i128::from(magnitude);
            return Ok(if invert == 0xff {
                -magnitude - 1
            } else {
                magnitude
            });
        }
    }
    let text = field
        .iter()
        .copied()
        .skip_while(|&byte| byte == b' ' || byte == 0)
        .take_while(|&byte| byte != b' ' && byte != 0)
        .collect::<Vec<u8>>();
    if text.is_empty() {
        return Ok(0);
    }
    let mut value: i128 = 0;
    for byte in &text {
        if !(b'0'..=b'7').contains(byte) {
            return Err(format!(
                "{label} field {:?} is not an octal number",
                String::from_utf8_lossy(field)
            ));
        }
        value = value * 8 + i128::from(byte - b'0');
    }
    Ok(value)
}

fn parse_unsigned(field: &[u8], label: &str) -> Result<u64, String> {
    let value = parse_number(field, label)?;
    u64::try_from(value).map_err(|_| format!("{label} {value} is out of range"))
}

fn verify_checksum(block: &[u8; BLOCK]) -> Result<(), String> {
    let recorded = parse_number(field_bytes(block, field::CHKSUM), "checksum")?;
    let (unsigned, signed) =
        block
            .iter()
            .enumerate()
            .fold((0i128, 0i128), |(unsigned, signed), (index, &byte)| {
                let byte = if (148..156).contains(&index) {
                    b' '
                } else {
                    byte
                };
                (unsigned + i128::from(byte), signed + i128::from(byte as i8))
            });
    if recorded == unsigned || recorded == signed {
        Ok(())
    } else {
        Err(format!(
            "header checksum {recorded:o} does not match the block (computed {unsigned:o}): not a tar archive, or a corrupted one"
        ))
    }
}

fn parse_block(block: &[u8; BLOCK]) -> Result<ParsedBlock, String> {
    let magic = field_bytes(block, field::MAGIC);
    let version = field_bytes(block, field::VERSION);
    let is_ustar = magic == b"ustar\0" && version == b"00";
    let is_gnu = magic == b"ustar " && version == b" \0";
    let mut name = parse_string(field_bytes(block, field::NAME));
    if is_ustar {
        let prefix = parse_string(field_bytes(block, field::PREFIX));
        if !prefix.is_empty() {
            let mut joined = prefix;
            joined.push(b'/');
            joined.extend_from_slice(&name);
            name = joined;
        }
    }
    let (dev_major, dev_minor) = if is_ustar || is_gnu {
        (
            parse_unsigned(field_bytes(block, field::DEVMAJOR), "devmajor")?,
            parse_unsigned(field_bytes(block, field::DEVMINOR), "devminor")?,
        )
    } else {
        (0, 0)
    };
    let mtime = parse_number(field_bytes(block, field::MTIME), "mtime")?;
    Ok(ParsedBlock {
        name,
        link_target: parse_string(field_bytes(block, field::LINKNAME)),
        mode: parse_unsigned(field_bytes(block, field::MODE), "mode")?,
        uid: parse_unsigned(field_bytes(block, field::UID), "uid")?,
        gid: parse_unsigned(field_bytes(block, field::GID), "gid")?,
        size: parse_unsigned(field_bytes(block, field::SIZE), "size")?,
        mtime: i64::try_from(mtime).map_err(|_| format!("mtime {mtime} is out of range"))?,
        typeflag: block[field::TYPEFLAG],
        dev_major,
        dev_minor,
    })
}

/// Parses PAX records into `extensions`.
fn parse_pax(mut data: &[u8], extensions: &mut Extensions) -> Result<(), String> {
    while !data.is_empty() {
        let space = data
            .iter()
            .position(|&byte| byte == b' ')
            .ok_or("a PAX record has no length")?;
        let length: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or("a PAX record's length is not a number")?;
        if length <= space + 1 || length > data.len() || data[length - 1] != b'\n' {
            return Err("a PAX record's length does not match its content".to_string());
        }
        let record = &data[space + 1..length - 1];
        data = &data[length..];
        let equals = record
            .iter()
            .position(|&byte| byte == b'=')
            .ok_or("a PAX record has no `=`")?;
        let (key, value) = (&record[..equals], &record[equals + 1..]);
        let number = |label: &str| -> Result<i128, String> {
            std::str::from_utf8(value)
                .ok()
                .and_then(|text| text.split('.').next())
                .and_then(|text| text.parse::<i128>().ok())
                .ok_or_else(|| {
                    format!(
                        "PAX {label} {:?} is not a number",
                        String::from_utf8_lossy(value)
                    )
                })
        };
        match key {
            b"path" => extensions.path = Some(value.to_vec()),
            b"linkpath" => extensions.link_target = Some(value.to_vec()),
            b"size" => {
                extensions.size =
                    Some(u64::try_from(number("size")?).map_err(|_| "PAX size out of range")?)
            }
            b"uid" => {
                extensions.uid =
                    Some(u64::try_from(number("uid")?).map_err(|_| "PAX uid out of range")?)
            }
            b"gid" => {
                extensions.gid =
                    Some(u64::try_from(number("gid")?).map_err(|_| "PAX gid out of range")?)
            }
            b"mtime" => {
                extensions.mtime =
                    Some(i64::try_from(number("mtime")?).map_err(|_| "PAX mtime out of range")?)
            }
            _ if key.starts_with(b"GNU.sparse.") => {
                return Err("GNU sparse files are not supported".to_string())
            }
            _ => {
                if let Some(xattr) = key.strip_prefix(b"SCHILY.xattr.") {
                    extensions.xattrs.retain(|(name, _)| name != xattr);
                    extensions.xattrs.push((xattr.to_vec(), value.to_vec()));
                }
                // Other records (atime, ctime, uname, comments, vendor keys) carry nothing
                // a layer needs.
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(header: &EntryHeader) -> Vec<u8> {
        let mut out = Vec::new();
        encode_header(header, &mut out).unwrap();
        out
    }

    #[test]
    fn ustar_header_fields_are_formatted_like_go() {
        let mut header = EntryHeader::new("etc/hostname", EntryKind::File);
        header.mode = 0o644;
        header.size = 5;
        header.mtime = 1_700_000_000;
        let block = encoded(&header);
        assert_eq!(block.len(), BLOCK);
        assert_eq!(&block[0..13], b"etc/hostname\0");
        assert_eq!(&block[100..108], b"0000644\0");
        assert_eq!(&block[108..116], b"0000000\0");
        assert_eq!(&block[124..136], b"00000000005\0");
        assert_eq!(&block[136..148], b"14524770400\0");
        assert_eq!(block[154], 0);
        assert_eq!(block[155], b' ');
        assert_eq!(&block[257..265], b"ustar\x0000");
        assert_eq!(&block[329..345], b"0000000\x000000000\0");
        assert!(
            block[265..329].iter().all(|&byte| byte == 0),
            "uname/gname empty"
        );
        verify_checksum(block.as_slice().try_into().unwrap()).unwrap();
    }

    #[test]
    fn long_ascii_paths_use_the_ustar_prefix() {
        let dir = "d".repeat(80);
        let path = format!("{dir}/{}", "f".repeat(60));
        let block = encoded(&EntryHeader::new(path.as_bytes(), EntryKind::File));
        assert_eq!(block.len(), BLOCK, "no PAX header needed");
        assert_eq!(parse_string(&block[0..100]), "f".repeat(60).as_bytes());
        assert_eq!(parse_string(&block[345..500]), dir.as_bytes());
    }

    #[test]
    fn unsplittable_and_non_ascii_paths_get_pax_records() {
        let path = "x".repeat(120);
        let out = encoded(&EntryHeader::new(path.as_bytes(), EntryKind::File));
        assert_eq!(out.len(), 3 * BLOCK);
        assert_eq!(out[156], b'x');
        assert_eq!(
            parse_string(&out[0..100]),
            format!("PaxHeaders.0/{}", "x".repeat(87)).as_bytes()
        );
        assert_eq!(
            &out[BLOCK..BLOCK + 130],
            format!("130 path={path}\n").as_bytes()
        );

        let out = encoded(&EntryHeader::new(
            "caf\u{e9}/men\u{fc}".as_bytes(),
            EntryKind::Dir,
        ));
        assert_eq!(parse_string(&out[0..100]), b"caf/men/PaxHeaders.0");
        assert_eq!(parse_string(&out[2 * BLOCK..2 * BLOCK + 100]), b"caf/men/");
    }

    #[test]
    fn pax_record_length_counts_itself() {
        let mut out = Vec::new();
        // 4 + 91 + 3 = 98, plus two digits is 100, which needs three: 101.
        pax_record(b"path", &[b'a'; 91], &mut out);
        assert_eq!(&out[..4], b"101 ");
        assert_eq!(out.len(), 101);
        out.clear();
        pax_record(b"path", b"a", &mut out);
        assert_eq!(out, b"9 path=a\n");
    }

    #[test]
    fn headers_round_trip_through_the_reader() {
        let mut header =
            EntryHeader::new(format!("{}/bin/ping", "usr".repeat(50)), EntryKind::File);
        header.mode = 0o4755;
        header.uid = 3_000_000;
        header.gid = 7;
        header.size = 3;
        header.mtime = -5;
        header.xattrs = vec![(b"security.capability".to_vec(), vec![1, 0, 0, 2, 0x20])];
        let mut link = EntryHeader::new("l", EntryKind::Symlink);
        link.link_target = "t".repeat(150).into_bytes();
        let mut archive = TarWriter::new(Vec::new());
        archive.append(&header, &b"abc"[..]).unwrap();
        archive.append(&link, io::empty()).unwrap();
        let bytes = archive.finish().unwrap();

        let mut reader = TarReader::new(&bytes[..]);
        let mut first = reader.next_entry().unwrap().unwrap();
        let mut data = Vec::new();
        first.read_to_end(&mut data).unwrap();
        assert_eq!(first.header, header);
        assert_eq!(data, b"abc");
        let second = reader.next_entry().unwrap().unwrap();
        assert_eq!(second.header, link);
        assert!(reader.next_entry().unwrap().is_none());
    }

    #[test]
    fn unpacked_size_counts_files_and_link_targets_as_docker() {
        let mut file = EntryHeader::new("f", EntryKind::File);
        file.size = 5;
        let mut symlink = EntryHeader::new("s", EntryKind::Symlink);
        symlink.link_target = b"target".to_vec();
        let mut hardlink = EntryHeader::new("h", EntryKind::Hardlink);
        hardlink.link_target = b"f".to_vec();
        let mut archive = TarWriter::new(Vec::new());
        archive
            .append(&EntryHeader::new("d", EntryKind::Dir), io::empty())
            .unwrap();
        archive.append(&file, &b"12345"[..]).unwrap();
        archive.append(&symlink, io::empty()).unwrap();
        archive.append(&hardlink, io::empty()).unwrap();
        assert_eq!(archive.unpacked_size(), 5 + 6);
    }

    #[test]
    fn sizes_beyond_eight_gib_go_into_pax() {
        let mut header = EntryHeader::new("huge", EntryKind::File);
        header.size = 10 << 30;
        let out = encoded(&header);
        assert_eq!(out.len(), 3 * BLOCK);
        assert_eq!(&out[BLOCK..BLOCK + 20], b"20 size=10737418240\n");
        assert_eq!(&out[2 * BLOCK + 124..2 * BLOCK + 136], b"00000000000\0");
        let mut reader = TarReader::new(&out[..]);
        assert_eq!(reader.next_header().unwrap().unwrap().size, 10 << 30);
    }

    #[test]
    fn corrupted_checksum_is_refused() {
        let mut bytes = encoded(&EntryHeader::new("a", EntryKind::File));
        bytes[0] = b'b';
        bytes.extend_from_slice(&[0u8; 1024]);
        let err = TarReader::new(&bytes[..]).next_entry().err().unwrap();
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    #[test]
    fn base256_numbers_are_read() {
        let mut field = [0u8; 8];
        field[0] = 0x80;
        field[5..8].copy_from_slice(&[0x01, 0x00, 0x00]);
        assert_eq!(parse_number(&field, "uid").unwrap(), 65536);
        assert_eq!(parse_number(&[0xff; 8], "mtime").unwrap(), -1);
    }
}
