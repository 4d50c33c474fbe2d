//! Why a backend could not answer, in terms every backend shares.

/// Why a backend could not load its model or answer a request.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A request cannot be answered as given.
    #[error("request cannot be scored: {0}")]
    BadRequest(String),
    /// The request cache failed.
    #[error("{0}")]
    Cache(String),
    /// A server could not answer (after retries), or answered with something unusable.
    #[error("{0}")]
    Server(String),
    /// An answer no model can give (a NaN, infinite or positive log-probability): refused
    /// where it enters, so it is never scored or cached.
    #[error("{0}")]
    Invalid(String),
    /// An engine's own failure (loading the model, a forward pass), with the engine's message.
    #[error(transparent)]
    Engine(Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// Refuses an answer no model can give (see [`BackendError::Invalid`]), naming the request:
/// request `request` of the call's document `doc`, and its continuation.
pub fn check_answer(
    doc: usize,
    request: usize,
    continuation: &str,
    answer: &assay_core::Loglikelihood,
) -> Result<(), BackendError> {
    answer.check().map_err(|why| {
        let shown: String = continuation.chars().take(60).collect();
        BackendError::Invalid(format!(
            "document {doc} of the batch, request {request} (continuation {shown:?}): {why}"
        ))
    })
}

/// Refuses a rolling answer no model can give, naming text `text` of the call.
pub fn check_rolling(
    text: usize,
    answer: &assay_core::RollingLoglikelihood,
) -> Result<(), BackendError> {
    answer
        .check()
        .map_err(|why| BackendError::Invalid(format!("text {text} of the batch: {why}")))
}
