//! Finding the phone: descriptors to phone info, the sysfs mapping on a fixture tree, the HID
//! hook switch on report descriptors and report bytes, and --list on this machine.

use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use callrec::capture::hid::{self, HookEvents, HookSwitch};
use callrec::capture::usb::{self, UsbDevice, CLASS_AUDIO, CLASS_HID, CLASS_VIDEO};

use crate::util::*;

/// A USB phone's telephony collection: report 1 holds Hook Switch (bit 0) and Phone Mute
/// (bit 1), then 6 bits of padding; LED outputs follow.
const PHONE_DESCRIPTOR: &[u8] = &[
    0x05, 0x0B, 0x09, 0x01, 0xA1, 0x01, 0x85, 0x01, 0x15, 0x00, 0x25, 0x01, 0x09, 0x20, 0x09, 0x2F,
    0x75, 0x01, 0x95, 0x02, 0x81, 0x02, 0x75, 0x06, 0x95, 0x01, 0x81, 0x03, 0x05, 0x08, 0x09, 0x09,
    0x09, 0x17, 0x75, 0x01, 0x95, 0x02, 0x91, 0x02, 0x75, 0x06, 0x95, 0x01, 0x91, 0x03, 0xC0,
];

/// A headset-style descriptor: consumer keys in report 2 first, then report 3 with Phone Mute,
/// Hook Switch and Flash, so the hook switch is bit 1 of report 3.
const HEADSET_DESCRIPTOR: &[u8] = &[
    0x05, 0x0C, 0x09, 0x01, 0xA1, 0x01, 0x85, 0x02, 0x09, 0xE9, 0x09, 0xEA, 0x15, 0x00, 0x25, 0x01,
    0x75, 0x01, 0x95, 0x02, 0x81, 0x02, 0x75, 0x06, 0x95, 0x01, 0x81, 0x03, 0xC0, 0x05, 0x0B, 0x09,
    0x05, 0xA1, 0x01, 0x85, 0x03, 0x09, 0x2F, 0x09, 0x20, 0x09, 0x21, 0x75, 0x01, 0x95, 0x03, 0x81,
    0x02, 0x75, 0x05, 0x95, 0x01, 0x81, 0x03, 0xC0,
];

/// A keyboard: no telephony page at all.
const KEYBOARD_DESCRIPTOR: &[u8] = &[
    0x05, 0x01, 0x09, 0x06, 0xA1, 0x01, 0x05, 0x07, 0x19, 0xE0, 0x29, 0xE7, 0x15, 0x00, 0x25, 0x01,
    0x75, 0x01, 0x95, 0x08, 0x81, 0x02, 0xC0,
];

#[test]
fn hook_switch_is_found_in_report_descriptors() {
    assert_eq!(
        hid::find_hook_switch(PHONE_DESCRIPTOR),
        Some(HookSwitch {
            report_id: Some(1),
            bit: 0
        })
    );
    assert_eq!(
        hid::find_hook_switch(HEADSET_DESCRIPTOR),
        Some(HookSwitch {
            report_id: Some(3),
            bit: 1
        })
    );
    assert_eq!(hid::find_hook_switch(KEYBOARD_DESCRIPTOR), None);
    // Truncated or garbage descriptors are answered, not panicked on.
    for cut in 0..HEADSET_DESCRIPTOR.len() {
        let _ = hid::find_hook_switch(&HEADSET_DESCRIPTOR[..cut]);
    }
    assert_eq!(hid::find_hook_switch(&[0xFE, 0xFF]), None);
}

/// A hidraw node: one report per read.
struct Reports(Vec<Vec<u8>>);

impl Read for Reports {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() {
            return Ok(0);
        }
        let report = self.0.remove(0);
        buf[..report.len()].copy_from_slice(&report);
        Ok(report.len())
    }
}

#[test]
fn hook_events_follow_the_handset() {
    let switch = hid::find_hook_switch(HEADSET_DESCRIPTOR).unwrap();
    // Recorded reports: on hook; a volume key (report 2); lifted; mute pressed while lifted;
    // put down; a short report.
    let reports = Reports(vec![
        vec![0x03, 0b000],
        vec![0x02, 0b01],
        vec![0x03, 0b010],
        vec![0x03, 0b011],
        vec![0x03, 0b000],
        vec![0x03],
    ]);
    let events: Vec<bool> = HookEvents::new(reports, switch)
        .map(Result::unwrap)
        .collect();
    assert_eq!(events, [false, true, false]);
}

fn usb_phone() -> UsbDevice {
    UsbDevice {
        vendor_id: 0x1a2b,
        product_id: 0x3c4d,
        manufacturer: String::new(), // libusb could not open it: sysfs fills these in
        product: String::new(),
        serial: String::new(),
        bus: 1,
        ports: vec![2],
        interface_classes: vec![CLASS_AUDIO, CLASS_HID, CLASS_VIDEO],
    }
}

#[test]
fn descriptors_make_phone_info() {
    let mut d = usb_phone();
    d.manufacturer = "Acme".into();
    d.product = "VoIP 300".into();
    d.serial = "8803880203".into();
    d.ports = vec![2, 3];
    assert_eq!(d.sysfs_name(), "1-2.3");
    assert!(d.is_phone(&[]));
    let info = d.phone_device();
    assert_eq!(
        (
            info.vendor.as_str(),
            info.model.as_str(),
            info.serial.as_str()
        ),
        ("Acme", "VoIP 300", "8803880203")
    );
    assert_eq!(
        (info.usb_vendor_id, info.usb_product_id),
        (Some(0x1a2b), Some(0x3c4d))
    );
    let mut keyboard = usb_phone();
    keyboard.interface_classes = vec![CLASS_HID];
    assert!(!keyboard.is_phone(&[]));
    assert!(
        keyboard.is_phone(&[(0x1a2b, 0x3c4d)]),
        "listed VID:PID is a phone"
    );
    assert_eq!(usb::parse_id("1A2B:3c4d").unwrap(), (0x1a2b, 0x3c4d));
    assert!(usb::parse_id("1a2b").is_err());
}

/// A sysfs tree as Linux lays it out for a phone on bus 1 port 2, with an onboard sound card
/// and another camera that are not the phone's.
fn fixture_sysfs(root: &Path) {
    let dev = root.join("devices/pci0000:00/0000:00:14.0/usb1/1-2");
    let write = |path: PathBuf, text: &[u8]| {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    write(dev.join("manufacturer"), b"Acme\n");
    write(dev.join("product"), b"VoIP 300\n");
    write(dev.join("serial"), b"8803880203\n");
    write(
        dev.join("1-2:1.3/0003:1A2B:3C4D.0001/report_descriptor"),
        PHONE_DESCRIPTOR,
    );
    fs::create_dir_all(dev.join("1-2:1.0")).unwrap();
    fs::create_dir_all(dev.join("1-2:1.4")).unwrap();
    let onboard = root.join("devices/pci0000:00/0000:00:1f.3");
    let other_camera = root.join("devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0");
    fs::create_dir_all(&onboard).unwrap();
    fs::create_dir_all(&other_camera).unwrap();
    fs::create_dir_all(root.join("bus/usb/devices")).unwrap();
    symlink(&dev, root.join("bus/usb/devices/1-2")).unwrap();
    let link = |class: &str, name: &str, target: &Path| {
        let dir = root.join("class").join(class).join(name);
        fs::create_dir_all(&dir).unwrap();
        symlink(target, dir.join("device")).unwrap();
        dir
    };
    link("sound", "card0", &onboard);
    link("sound", "card2", &dev.join("1-2:1.0"));
    fs::write(
        link("video4linux", "video0", &other_camera).join("index"),
        "0\n",
    )
    .unwrap();
    fs::write(
        link("video4linux", "video2", &dev.join("1-2:1.4")).join("index"),
        "0\n",
    )
    .unwrap();
    fs::write(
        link("video4linux", "video3", &dev.join("1-2:1.4")).join("index"),
        "1\n",
    )
    .unwrap();
    link(
        "hidraw",
        "hidraw1",
        &dev.join("1-2:1.3/0003:1A2B:3C4D.0001"),
    );
}

#[test]
fn sysfs_maps_the_phone_to_its_card_camera_and_hook() {
    let t = TestDir::new();
    fixture_sysfs(t.path());
    let phone = usb::locate(usb_phone(), t.path());
    assert_eq!(phone.usb.manufacturer, "Acme");
    assert_eq!(phone.usb.product, "VoIP 300");
    assert_eq!(phone.usb.serial, "8803880203");
    assert_eq!(phone.audio.as_deref(), Some("alsa:hw:2,0"));
    assert_eq!(phone.video.as_deref(), Some("v4l2:/dev/video2"));
    assert_eq!(
        phone.hook,
        Some((
            PathBuf::from("/dev/hidraw1"),
            HookSwitch {
                report_id: Some(1),
                bit: 0
            }
        ))
    );
    // A device sysfs does not know keeps what libusb said, and has no nodes.
    let mut elsewhere = usb_phone();
    elsewhere.ports = vec![9];
    let phone = usb::locate(elsewhere, t.path());
    assert_eq!((phone.audio, phone.video, phone.hook), (None, None, None));
}

#[test]
fn list_runs_cleanly_without_usb() {
    let t = TestDir::new();
    let (code, stdout, stderr) = run(t.cmd("callrec-capture").arg("--list"));
    assert_eq!(code, 0, "{stderr}");
    // This machine has no USB bus: it says so, and lists nothing.
    if stdout.is_empty() {
        assert!(stderr.contains("USB"), "{stderr}");
    }
    let (code, _, stderr) = run(t.cmd("callrec-capture").args(["-o", "."]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--audio"),
        "says how to record without a phone: {stderr}"
    );
}
