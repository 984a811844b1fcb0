//! ragctl: deploy and operate a Dify-style RAG stack on Docker.
//!
//! The pipeline is parse → resolve → plan → apply: `cli` parses flags, `settings` resolves them with the
//! environment and `ragctl.yaml`, `profile` + `stack` build a pure model of the stack, `render` turns the model
//! into files, and only the command layer writes files or talks to Docker.

pub mod atomic_file;
pub mod dotenv;
