//! The IDX reader on random and mutated bytes: a typed error or a consistent array,
//! never a panic.

use std::io::Write;
use std::path::Path;

use proptest::collection::vec;
use proptest::prelude::*;

/// A valid 3 × 4 × 5 unsigned-byte IDX file.
fn valid() -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for d in [3u32, 4, 5] {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend((0..60).map(|i| i as u8));
    b
}

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    match hf_models::parse_idx(bytes, Path::new("fuzz.idx")) {
        Ok(a) => prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>()),
        Err(e) => prop_assert!(e.to_string().contains("fuzz.idx"), "{}", e),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes(bytes in vec(any::<u8>(), 0..256)) {
        check(&bytes)?;
    }

    #[test]
    fn mutated_and_cut_files(mutations in vec((any::<usize>(), any::<u8>()), 0..6), cut in any::<usize>()) {
        let mut bytes = valid();
        let n = bytes.len();
        for (i, b) in mutations {
            bytes[i % n] = b;
        }
        bytes.truncate(cut % (n + 1));
        check(&bytes)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Through the file reader, gzipped streams with damaged bytes included.
    #[test]
    fn damaged_gzip_files(mutations in vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&valid()).unwrap();
        let mut bytes = gz.finish().unwrap();
        let n = bytes.len();
        for (i, b) in mutations {
            bytes[i % n] = b;
        }
        let path = std::env::temp_dir().join(format!("hf-fuzz-idx-{}.gz", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let read = hf_models::read_idx(&path);
        std::fs::remove_file(&path).unwrap();
        match read {
            Ok(a) => prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>()),
            Err(e) => prop_assert!(e.to_string().contains("hf-fuzz-idx"), "{}", e),
        }
    }
}
