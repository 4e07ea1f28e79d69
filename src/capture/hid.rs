//! The phone's hook switch, read from its HID Telephony interface (usage page 0x0B, Hook Switch
//! usage 0x20): where the bit sits in the phone's input reports, found by parsing the HID report
//! descriptor (HID 1.11, section 6.2.2), and the lifted/replaced events read from `/dev/hidrawN`.

use std::io::{self, Read};

/// Usage page of telephony devices.
pub const TELEPHONY_PAGE: u16 = 0x0B;
/// Usage of the hook switch: 1 while the handset is lifted (off hook).
pub const HOOK_SWITCH: u16 = 0x20;

/// Where the hook switch is in an input report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookSwitch {
    /// The report's id (its first byte), if the device numbers its reports.
    pub report_id: Option<u8>,
    /// Bit offset in the report's data (after the id byte), least significant bit first.
    pub bit: usize,
}

#[derive(Debug, Clone, Copy, Default)]
struct Globals {
    usage_page: u16,
    report_size: u32,
    report_count: u32,
    report_id: Option<u8>,
}

/// Find the hook switch among the input fields a report descriptor declares. Returns `None`
/// for descriptors without one, and for malformed descriptors (never panics).
pub fn find_hook_switch(descriptor: &[u8]) -> Option<HookSwitch> {
    let mut globals = Globals::default();
    let mut stack: Vec<Globals> = Vec::new();
    let mut usages: Vec<(u16, u16)> = Vec::new(); // (page, usage)
    let mut usage_min: Option<(u16, u16)> = None;
    // Bits used so far in each report's input data, by report id.
    let mut offsets: Vec<(Option<u8>, usize)> = Vec::new();
    let mut i = 0;
    while i < descriptor.len() {
        let prefix = descriptor[i];
        if prefix == 0xFE {
            // A long item: skip it.
            let size = usize::from(*descriptor.get(i + 1)?);
            i += 3 + size;
            continue;
        }
        let size = [0, 1, 2, 4][usize::from(prefix & 3)];
        let data = descriptor.get(i + 1..i + 1 + size)?;
        let value = data
            .iter()
            .rev()
            .fold(0u32, |v, &b| (v << 8) | u32::from(b));
        let (kind, tag) = ((prefix >> 2) & 3, prefix >> 4);
        i += 1 + size;
        match (kind, tag) {
            // Global items.
            (1, 0) => globals.usage_page = value as u16,
            (1, 7) => globals.report_size = value,
            (1, 8) => globals.report_id = Some(value as u8),
            (1, 9) => globals.report_count = value,
            (1, 10) => stack.push(globals),
            (1, 11) => globals = stack.pop()?,
            // Local items: a 4-byte usage carries its own page in the high half.
            (2, 0) => usages.push(if size == 4 {
                ((value >> 16) as u16, value as u16)
            } else {
                (globals.usage_page, value as u16)
            }),
            (2, 1) => usage_min = Some((globals.usage_page, value as u16)),
            (2, 2) => {
                if let Some((page, min)) = usage_min.take() {
                    let max = value as u16;
                    if max >= min && max - min < 1024 {
                        usages.extend((min..=max).map(|u| (page, u)));
                    }
                }
            }
            // Main items: an input field, or anything else that ends the locals.
            (0, 8) => {
                let offset = match offsets.iter_mut().find(|(id, _)| *id == globals.report_id) {
                    Some((_, offset)) => offset,
                    None => {
                        offsets.push((globals.report_id, 0));
                        &mut offsets.last_mut().expect("just pushed").1
                    }
                };
                let constant = value & 1 != 0;
                let variable = value & 2 != 0;
                let (size, count) = (globals.report_size as usize, globals.report_count as usize);
                if !constant && variable && !usages.is_empty() {
                    for n in 0..count.min(4096) {
                        let usage = usages[n.min(usages.len() - 1)];
                        if usage == (TELEPHONY_PAGE, HOOK_SWITCH) {
                            return Some(HookSwitch {
                                report_id: globals.report_id,
                                bit: *offset + n * size,
                            });
                        }
                    }
                }
                *offset = offset.checked_add(size.checked_mul(count)?)?;
                usages.clear();
                usage_min = None;
            }
            (0, _) => {
                usages.clear();
                usage_min = None;
            }
            _ => {}
        }
    }
    None
}

/// The hook switch's state in one input report: `Some(true)` when the handset is lifted,
/// `None` if the report is another one or too short.
pub fn hook_state(switch: &HookSwitch, report: &[u8]) -> Option<bool> {
    let data = match switch.report_id {
        Some(id) => report.strip_prefix(&[id])?,
        None => report,
    };
    let byte = data.get(switch.bit / 8)?;
    Some(byte & (1 << (switch.bit % 8)) != 0)
}

/// Hook switch changes read from a hidraw device (one report per read): `true` when the
/// handset is lifted, `false` when it is put down. The first report's state counts as a change.
pub struct HookEvents<R> {
    reader: R,
    switch: HookSwitch,
    last: Option<bool>,
}

impl<R: Read> HookEvents<R> {
    pub fn new(reader: R, switch: HookSwitch) -> HookEvents<R> {
        HookEvents {
            reader,
            switch,
            last: None,
        }
    }
}

impl<R: Read> Iterator for HookEvents<R> {
    type Item = io::Result<bool>;

    fn next(&mut self) -> Option<io::Result<bool>> {
        let mut report = [0u8; 64];
        loop {
            let n = match self.reader.read(&mut report) {
                Ok(0) => return None,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Some(Err(e)),
            };
            if let Some(state) = hook_state(&self.switch, &report[..n]) {
                if self.last != Some(state) {
                    self.last = Some(state);
                    return Some(Ok(state));
                }
            }
        }
    }
}
