//! Finding the desk phone on USB, and the capture devices the kernel made for it.
//!
//! USB devices are listed with libusb (through rusb, linked to the system's libusb). A device
//! is a phone if its VID:PID is on the configured list, or if it exposes a USB Audio Class
//! interface. Its sound card, camera and hook switch are then found through sysfs: each
//! `/sys/class/{sound,video4linux,hidraw}/X/device` link resolves to an interface of the USB
//! device, below the device's own sysfs directory `/sys/bus/usb/devices/BUS-PORT.PORT`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::capture::hid::{self, HookSwitch};
use crate::record::PhoneDevice;

/// USB interface class codes.
pub const CLASS_AUDIO: u8 = 0x01;
pub const CLASS_HID: u8 = 0x03;
pub const CLASS_VIDEO: u8 = 0x0E;

/// What enumeration tells about one USB device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsbDevice {
    pub vendor_id: u16,
    pub product_id: u16,
    pub manufacturer: String,
    pub product: String,
    pub serial: String,
    pub bus: u8,
    /// Port numbers from the root hub down.
    pub ports: Vec<u8>,
    /// Class codes of the interfaces of its active configuration.
    pub interface_classes: Vec<u8>,
}

impl UsbDevice {
    /// The device's name in sysfs: `BUS-PORT.PORT...` (`1-2.3`).
    pub fn sysfs_name(&self) -> String {
        let ports: Vec<String> = self.ports.iter().map(u8::to_string).collect();
        format!("{}-{}", self.bus, ports.join("."))
    }

    /// Is this a phone: on the list of known phones, or an audio device?
    pub fn is_phone(&self, known: &[(u16, u16)]) -> bool {
        known.contains(&(self.vendor_id, self.product_id))
            || self.interface_classes.contains(&CLASS_AUDIO)
    }

    /// The record's phone device info.
    pub fn phone_device(&self) -> PhoneDevice {
        PhoneDevice {
            number: self.serial.clone(),
            vendor: self.manufacturer.clone(),
            model: self.product.clone(),
            serial: self.serial.clone(),
            usb_vendor_id: Some(self.vendor_id),
            usb_product_id: Some(self.product_id),
        }
    }
}

/// A phone and the nodes through which it is recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phone {
    pub usb: UsbDevice,
    /// Its sound card as a capture source: `alsa:hw:N,0`.
    pub audio: Option<String>,
    /// Its camera as a capture source: `v4l2:/dev/videoN`.
    pub video: Option<String>,
    /// Its hook switch: the hidraw node and where the switch is in its reports.
    #[serde(skip)]
    pub hook: Option<(PathBuf, HookSwitch)>,
    /// The hidraw node of the hook switch, for listing.
    pub hook_device: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum UsbError {
    #[error("no USB on this machine ({0})")]
    NoUsb(String),
    #[error("{0:?} is not VID:PID in hex, e.g. 1a2b:3c4d")]
    BadId(String),
}

/// Parse `VID:PID` (hex).
pub fn parse_id(text: &str) -> Result<(u16, u16), UsbError> {
    let bad = || UsbError::BadId(text.to_string());
    let (v, p) = text.trim().split_once(':').ok_or_else(bad)?;
    Ok((
        u16::from_str_radix(v, 16).map_err(|_| bad())?,
        u16::from_str_radix(p, 16).map_err(|_| bad())?,
    ))
}

/// List the USB devices with libusb. A machine without USB (no usbfs, as in containers) is an
/// [`UsbError::NoUsb`], which callers report plainly.
pub fn enumerate() -> Result<Vec<UsbDevice>, UsbError> {
    let context = rusb::Context::new().map_err(|e| UsbError::NoUsb(e.to_string()))?;
    use rusb::UsbContext;
    let list = context
        .devices()
        .map_err(|e| UsbError::NoUsb(e.to_string()))?;
    let mut devices = Vec::new();
    for device in list.iter() {
        let Ok(descriptor) = device.device_descriptor() else {
            continue;
        };
        let mut interface_classes = Vec::new();
        if let Ok(config) = device.active_config_descriptor() {
            for interface in config.interfaces() {
                for alt in interface.descriptors() {
                    if !interface_classes.contains(&alt.class_code()) {
                        interface_classes.push(alt.class_code());
                    }
                }
            }
        }
        // Strings need the device opened; without permission they stay empty (sysfs has them).
        let strings = device.open().ok().map(|handle| {
            let read = |index: Option<u8>| {
                index
                    .and_then(|i| handle.read_string_descriptor_ascii(i).ok())
                    .unwrap_or_default()
            };
            (
                read(descriptor.manufacturer_string_index()),
                read(descriptor.product_string_index()),
                read(descriptor.serial_number_string_index()),
            )
        });
        let (manufacturer, product, serial) = strings.unwrap_or_default();
        devices.push(UsbDevice {
            vendor_id: descriptor.vendor_id(),
            product_id: descriptor.product_id(),
            manufacturer,
            product,
            serial,
            bus: device.bus_number(),
            ports: device.port_numbers().unwrap_or_default(),
            interface_classes,
        });
    }
    Ok(devices)
}

fn read_attr(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Entries of `/sys/class/CLASS` whose device lies below `device_dir`, sorted by name.
fn class_entries_below(sysfs: &Path, class: &str, device_dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(sysfs.join("class").join(class)) else {
        return Vec::new();
    };
    let mut found: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let target = fs::canonicalize(e.path().join("device")).ok()?;
            target
                .starts_with(device_dir)
                .then(|| (e.file_name().to_string_lossy().into_owned(), e.path()))
        })
        .collect();
    found.sort_by_key(|(name, _)| (name.len(), name.clone()));
    found
}

/// Fill in what sysfs (rooted at `sysfs`, normally `/sys`) knows about a device: strings
/// libusb could not read, and its sound card, camera and hook switch.
pub fn locate(mut usb: UsbDevice, sysfs: &Path) -> Phone {
    let mut phone = Phone {
        audio: None,
        video: None,
        hook: None,
        hook_device: None,
        usb: usb.clone(),
    };
    let Ok(device_dir) = fs::canonicalize(sysfs.join("bus/usb/devices").join(usb.sysfs_name()))
    else {
        return phone;
    };
    for (field, attr) in [
        (&mut usb.manufacturer, "manufacturer"),
        (&mut usb.product, "product"),
        (&mut usb.serial, "serial"),
    ] {
        if field.is_empty() {
            *field = read_attr(&device_dir, attr);
        }
    }
    phone.usb = usb;
    phone.audio = class_entries_below(sysfs, "sound", &device_dir)
        .into_iter()
        .find_map(|(name, _)| name.strip_prefix("card").map(|n| format!("alsa:hw:{n},0")));
    // A camera makes a capture node (index 0) and a metadata node; record from the first.
    phone.video = class_entries_below(sysfs, "video4linux", &device_dir)
        .into_iter()
        .find(|(_, dir)| matches!(read_attr(dir, "index").as_str(), "" | "0"))
        .map(|(name, _)| format!("v4l2:/dev/{name}"));
    for (name, dir) in class_entries_below(sysfs, "hidraw", &device_dir) {
        let descriptor = fs::read(dir.join("device/report_descriptor")).unwrap_or_default();
        if let Some(switch) = hid::find_hook_switch(&descriptor) {
            let node = PathBuf::from("/dev").join(&name);
            phone.hook_device = Some(node.clone());
            phone.hook = Some((node, switch));
            break;
        }
    }
    phone
}

/// The phones among `devices`, located through sysfs.
pub fn phones(devices: Vec<UsbDevice>, known: &[(u16, u16)], sysfs: &Path) -> Vec<Phone> {
    devices
        .into_iter()
        .filter(|d| d.is_phone(known))
        .map(|d| locate(d, sysfs))
        .collect()
}
