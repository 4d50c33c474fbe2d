//! Reports of compared runs: a self-contained HTML file (comparison table, bar and delta
//! charts as inline SVG drawn with plotters, run provenance, and a sample browser), and
//! `assay view`, a local web server over the run registry that shows the same pieces for any
//! selection of runs. Both use the same fragments and the same browser script; the server only
//! ever answers with assets compiled into the binary and data from the registry.

mod charts;
mod html;
mod server;

pub use charts::{bar_chart, delta_chart};
pub use html::{build_report, comparison_fragment, provenance_fragment, Report};
pub use server::{serve, ViewError};
