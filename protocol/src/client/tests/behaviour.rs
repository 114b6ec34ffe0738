//! Behaviour details beyond the transcripts.
