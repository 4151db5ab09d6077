//! What a Lambda artifact's binary needs from the machine that runs it: its ELF machine and the
//! newest glibc symbol version it links against. Read from the bytes, never from the host.

use anyhow::bail;

/// The CPU an ELF file is for (`e_machine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Machine {
    X86_64,
    Aarch64,
    Other(u16),
}

/// Reads `e_machine` of a 64-bit little-endian ELF file.
pub(crate) fn machine(bytes: &[u8]) -> anyhow::Result<Machine> {
    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        bail!("not an ELF executable (a binary built for another OS?)");
    }
    if bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
        bail!("not a 64-bit little-endian ELF executable");
    }
    let raw = u16::from_le_bytes([bytes[18], bytes[19]]);
    Ok(match raw {
        0x3e => Machine::X86_64,
        0xb7 => Machine::Aarch64,
        other => Machine::Other(other),
    })
}

/// The newest `GLIBC_2.N` version the binary names (its version requirements live in the
/// dynamic string table as these strings), as `(2, N)`.
pub(crate) fn newest_glibc(bytes: &[u8]) -> Option<(u32, u32)> {
    const NEEDLE: &[u8] = b"GLIBC_2.";
    let mut newest = None;
    let mut i = 0;
    while let Some(pos) = find(&bytes[i..], NEEDLE) {
        let start = i + pos + NEEDLE.len();
        let digits: Vec<u8> = bytes[start..]
            .iter()
            .copied()
            .take_while(u8::is_ascii_digit)
            .collect();
        if let Ok(minor) = String::from_utf8_lossy(&digits).parse::<u32>() {
            newest = newest.max(Some((2, minor)));
        }
        i = start;
    }
    newest
}

/// Refuses a binary that cannot start on a `cpu` machine whose glibc is `glibc` (or older).
pub(crate) fn fits(bytes: &[u8], cpu: Machine, glibc: (u32, u32)) -> anyhow::Result<()> {
    let found = machine(bytes)?;
    if found != cpu {
        bail!("it is for {found:?}, not {cpu:?}");
    }
    if let Some(needs) = newest_glibc(bytes).filter(|g| *g > glibc) {
        bail!(
            "it needs glibc {}.{}, newer than {}.{}",
            needs.0,
            needs.1,
            glibc.0,
            glibc.1
        );
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h
    }

    #[test]
    fn reads_the_machine_and_the_newest_glibc() {
        assert_eq!(machine(&header(0x3e)).ok(), Some(Machine::X86_64));
        assert_eq!(machine(&header(0xb7)).ok(), Some(Machine::Aarch64));
        assert!(machine(b"\xcf\xfa\xed\xfe Mach-O").is_err());
        let mut binary = header(0x3e);
        binary.extend_from_slice(b"\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.17\0GLIBC_PRIVATE\0");
        assert_eq!(newest_glibc(&binary), Some((2, 34)));
        binary.extend_from_slice(b"GLIBC_2.38\0");
        assert_eq!(newest_glibc(&binary), Some((2, 38)));
        assert_eq!(newest_glibc(&header(0x3e)), None);
    }
}
