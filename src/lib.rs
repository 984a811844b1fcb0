//! ragctl: deploy and operate a Dify-style RAG stack on Docker.
