//! The process-wide rendezvous of every gst-broadcast registry.
//!
//! Each plugin `.so` links its own copy of this crate, so each has its own
//! [`REGISTRY`](crate::registry) and its own statics. To give one scrape of
//! the whole graph, the first copy loaded stores a small C-layout [`Hub`] as
//! GLib type data on `GObject`'s GType (process-global, shared by every
//! copy); each copy adds a C-ABI collector callback that renders its own
//! registry. The HTTP endpoint and the textfile render every collector and
//! merge the families ([`crate::expfmt::Merger`]). The hub also records which
//! copy started the environment's outputs and which HTTP addresses are
//! already served, so that only one copy binds them.
//!
//! GStreamer loads plugins one at a time (its plugin-loading lock), and
//! every plugin calls [`crate::start_from_env`] from `plugin_init`, which
//! creates or joins the hub there; creation is therefore not raced.

use std::ffi::{c_char, CStr, CString};
use std::sync::OnceLock;

use glib_sys as glib;
use gobject_sys as gobject;

/// Layout version of [`Hub`]; a hub of another layout is not joined.
const HUB_VERSION: u32 = 1;
const HUB_QUARK: &CStr = c"gst-broadcast-metrics-hub-v1";

/// A collector appends its registry's exposition text to the `GString`.
type Collector = unsafe extern "C" fn(out: *mut glib::GString);

#[repr(C)]
struct Hub {
    version: u32,
    env_started: glib::gboolean,
    lock: glib::GMutex,
    /// `Collector` function pointers.
    collectors: *mut glib::GPtrArray,
    /// NUL-terminated `"requested bound"` address pairs served over HTTP.
    served: *mut glib::GPtrArray,
}

struct HubPtr(*mut Hub);
// The hub is only touched under its GMutex (or read-only for `version`).
unsafe impl Send for HubPtr {}
unsafe impl Sync for HubPtr {}

static HUB: OnceLock<Option<HubPtr>> = OnceLock::new();

unsafe extern "C" fn collect_local(out: *mut glib::GString) {
    let text = std::panic::catch_unwind(crate::render_local_text).unwrap_or_default();
    unsafe { glib::g_string_append_len(out, text.as_ptr() as *const c_char, text.len() as isize) };
}

/// This copy's view of the hub, created or joined on first use; `None` when
/// a hub of another layout exists (this copy then stays on its own).
fn hub() -> Option<*mut Hub> {
    HUB.get_or_init(|| unsafe {
        let quark = glib::g_quark_from_static_string(HUB_QUARK.as_ptr());
        let gtype = gobject::g_object_get_type();
        let mut hub = gobject::g_type_get_qdata(gtype, quark) as *mut Hub;
        if hub.is_null() {
            hub = Box::into_raw(Box::new(Hub {
                version: HUB_VERSION,
                env_started: glib::GFALSE,
                lock: std::mem::zeroed(),
                collectors: glib::g_ptr_array_new(),
                served: glib::g_ptr_array_new(),
            }));
            glib::g_mutex_init(&mut (*hub).lock);
            gobject::g_type_set_qdata(gtype, quark, hub as glib::gpointer);
        } else if (*hub).version != HUB_VERSION {
            return None;
        }
        glib::g_mutex_lock(&mut (*hub).lock);
        glib::g_ptr_array_add(
            (*hub).collectors,
            collect_local as *const () as glib::gpointer,
        );
        glib::g_mutex_unlock(&mut (*hub).lock);
        Some(HubPtr(hub))
    })
    .as_ref()
    .map(|h| h.0)
}

/// Runs `f` with the hub locked.
fn with_hub<T>(f: impl FnOnce(&mut Hub) -> T) -> Option<T> {
    let hub = hub()?;
    unsafe {
        glib::g_mutex_lock(&mut (*hub).lock);
        let value = f(&mut *hub);
        glib::g_mutex_unlock(&mut (*hub).lock);
        Some(value)
    }
}

/// Joins the hub (registering this copy's collector). Called from
/// `plugin_init` through [`crate::start_from_env`].
pub(crate) fn join() {
    let _ = hub();
}

/// Renders every registry of the process, merged per family; `None` when no
/// other copy shares the hub (the caller renders its own registry then).
pub(crate) fn render_all() -> Option<String> {
    let collectors: Vec<Collector> = with_hub(|h| unsafe {
        (0..(*h.collectors).len as usize)
            .map(|i| {
                std::mem::transmute::<glib::gpointer, Collector>(*(*h.collectors).pdata.add(i))
            })
            .collect()
    })?;
    if collectors.len() <= 1 {
        return None;
    }
    let mut merger = crate::expfmt::Merger::new();
    for collect in collectors {
        let text = unsafe {
            let s = glib::g_string_new(std::ptr::null());
            collect(s);
            let bytes = std::slice::from_raw_parts((*s).str as *const u8, (*s).len);
            let text = String::from_utf8_lossy(bytes).into_owned();
            glib::g_string_free(s, glib::GTRUE);
            text
        };
        if let Ok(families) = crate::expfmt::parse(&text) {
            merger.add(families);
        }
    }
    let mut out = String::new();
    merger.write(&mut out);
    Some(out)
}

/// Marks the environment's outputs as started; returns false when another
/// copy did so already.
pub(crate) fn claim_env_start() -> bool {
    with_hub(|h| {
        let first = h.env_started == glib::GFALSE;
        h.env_started = glib::GTRUE;
        first
    })
    .unwrap_or(true)
}

/// The bound address of an HTTP endpoint another copy serves for `addr`.
pub(crate) fn served(addr: std::net::SocketAddr) -> Option<std::net::SocketAddr> {
    with_hub(|h| unsafe {
        (0..(*h.served).len as usize).find_map(|i| {
            let entry = CStr::from_ptr(*(*h.served).pdata.add(i) as *const c_char)
                .to_str()
                .ok()?;
            let (req, bound) = entry.split_once(' ')?;
            let (req, bound): (std::net::SocketAddr, std::net::SocketAddr) =
                (req.parse().ok()?, bound.parse().ok()?);
            (req == addr || bound == addr).then_some(bound)
        })
    })
    .flatten()
}

/// Records that `requested` is served, bound to `bound`.
pub(crate) fn add_served(requested: std::net::SocketAddr, bound: std::net::SocketAddr) {
    let entry = CString::new(format!("{requested} {bound}")).expect("no NUL in addresses");
    with_hub(|h| unsafe {
        glib::g_ptr_array_add(h.served, glib::g_strdup(entry.as_ptr()) as glib::gpointer);
    });
}
