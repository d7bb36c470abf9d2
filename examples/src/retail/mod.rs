//! The retail job and the code it is checked with.
//!
//! [`source::LineReader`] streams the Online Retail CSV, plain or gzip-compressed, as parsed
//! [`line::InvoiceLine`]s or [`line::MalformedLine`]s. Amounts are exact [`money::Money`] in
//! thousandths of a pound. [`expected::Expected`] applies the shop's rejection rules and sums the
//! accepted lines per invoice, customer and stock code without any actor, so the actors' results
//! can be checked against it.
//!
//! The job itself ([`run::run`]) sends every line to an [`invoice::Invoice`] actor, whose events
//! the [`policies`] carry on to [`customer::Customer`] and [`product::Product`] actors. It then
//! reads every actor back on a new runtime and compares it with [`expected::Expected`]
//! ([`verify`]), and prints a [`report::Report`].

pub mod customer;
pub mod expected;
pub mod groups;
pub mod input;
pub mod invoice;
pub mod job;
pub mod line;
pub mod money;
pub mod policies;
pub mod product;
pub mod progress;
pub mod report;
pub mod run;
pub mod source;
pub mod store;
pub mod verify;
