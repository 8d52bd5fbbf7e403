//! Errors of patch application, classified the way upstream's PATCH handler answers them.

use thiserror::Error;

/// Why a patch could not be applied. The variants follow the classes upstream distinguishes,
/// so that [`PatchError::code`], [`PatchError::reason`] and [`PatchError::status_message`]
/// reproduce the `Status` upstream would send.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatchError {
    /// The body is not valid JSON, or not a JSON patch document (400 BadRequest).
    #[error("{0}")]
    MalformedPatch(String),
    /// A JSON patch operation could not be applied, e.g. a failed `test` or a missing path
    /// (422 Invalid).
    #[error("{0}")]
    JsonPatchFailed(String),
    /// A merge patch that is not a JSON object (400 BadRequest).
    #[error("Invalid JSON Patch")]
    InvalidMergePatch,
    /// A `$deleteFromPrimitiveList/<field>` directive that is not a list (400 BadRequest).
    #[error("invalid patch format of primitive list")]
    BadPrimitiveListFormat,
    /// A `$retainKeys` directive that is not a list, or a patch setting a key the directive
    /// does not retain (400 BadRequest).
    #[error("invalid patch format of retainKeys")]
    BadRetainKeysFormat,
    /// A `$setElementOrder/<field>` directive that is malformed (400 BadRequest).
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrderFormat,
    /// A list whose items are lists (422 Invalid).
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// Any other strategic merge failure (missing merge key, unknown `$patch` directive, mixed
    /// item types...). Upstream passes these through unclassified: 500 with an empty reason.
    #[error("{0}")]
    Unmergeable(String),
}

/// Message upstream puts in a 422 raised through its generic server response helper, which
/// drops the detailed cause.
const GENERIC_INVALID_MESSAGE: &str =
    "the server rejected our request due to an error in our request";

impl PatchError {
    /// HTTP status code of the error response.
    pub fn code(&self) -> u16 {
        match self {
            PatchError::MalformedPatch(_)
            | PatchError::InvalidMergePatch
            | PatchError::BadPrimitiveListFormat
            | PatchError::BadRetainKeysFormat
            | PatchError::BadSetElementOrderFormat => 400,
            PatchError::JsonPatchFailed(_) | PatchError::ListOfLists => 422,
            PatchError::Unmergeable(_) => 500,
        }
    }

    /// `Status.reason` of the error response (empty for upstream's "Unknown").
    pub fn reason(&self) -> &'static str {
        match self.code() {
            400 => "BadRequest",
            422 => "Invalid",
            _ => "",
        }
    }

    /// Whether upstream answers this with 400 BadRequest.
    pub fn is_bad_request(&self) -> bool {
        self.code() == 400
    }

    /// `Status.message` upstream sends: the error text, except for 422s, whose detail
    /// upstream replaces by a generic sentence.
    pub fn status_message(&self) -> String {
        match self.code() {
            422 => GENERIC_INVALID_MESSAGE.to_string(),
            _ => self.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_map_to_upstream_codes() {
        assert_eq!(PatchError::BadRetainKeysFormat.code(), 400);
        assert!(PatchError::MalformedPatch("x".into()).is_bad_request());
        assert_eq!(PatchError::ListOfLists.reason(), "Invalid");
        assert_eq!(PatchError::Unmergeable("x".into()).code(), 500);
        assert_eq!(PatchError::Unmergeable("x".into()).reason(), "");
    }

    #[test]
    fn invalid_patches_get_the_generic_message() {
        let err = PatchError::JsonPatchFailed("path is invalid".into());
        assert_eq!(err.status_message(), GENERIC_INVALID_MESSAGE);
        assert_eq!(err.to_string(), "path is invalid");
        assert_eq!(
            PatchError::BadSetElementOrderFormat.status_message(),
            "invalid patch format of setElementOrder list"
        );
    }
}
