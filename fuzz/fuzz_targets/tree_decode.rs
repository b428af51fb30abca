//! Tree blobs are decoded during restore, ls and diff; a damaged or hostile
//! tree must be an error, not a panic or an out-of-memory abort.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opc_store::snapshot::Tree;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut tree) = Tree::decode(data) {
        // A valid tree re-encodes to something that decodes to the same tree.
        let again = Tree::decode(&tree.encode()).expect("re-encoded tree decodes");
        assert_eq!(again, tree);
    }
});
