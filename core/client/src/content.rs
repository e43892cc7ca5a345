//! What a message says: the content codec lives in the client engine
//! (`sotto_engine::content`), shared with the npm package through WebAssembly.

pub use sotto_engine::Content;
