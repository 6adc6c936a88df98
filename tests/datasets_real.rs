//! Real Fashion-MNIST as Debian's `dataset-fashion-mnist` installs it (CI installs it).
use neuroevo::data::datasets::{FASHION_SUMS, IDX_FILES};
use neuroevo::data::{load_dataset, DataOptions, DatasetName};
use std::path::Path;
use tch::{Device, Kind};

fn debian_dir() -> Option<&'static Path> {
    let d = Path::new("/usr/share/datasets/fashion-mnist");
    if d.is_dir() {
        return Some(d);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must install dataset-fashion-mnist (apt)"
    );
    eprintln!("skipped: /usr/share/datasets/fashion-mnist is missing (apt-get install dataset-fashion-mnist)");
    None
}

#[test]
fn fashion_mnist_loads_all_70k_images_and_matches_its_checksums() {
    let Some(dir) = debian_dir() else { return };
    for (stem, sum) in IDX_FILES.iter().zip(FASHION_SUMS.iter()) {
        let bytes = std::fs::read(dir.join(format!("{stem}.gz"))).unwrap();
        assert!(sum.matches(&bytes), "{stem}: content checksum");
    }
    let empty = tempfile::tempdir().unwrap();
    let opts = DataOptions {
        data_dir: Some(empty.path().to_path_buf()),
        download: false,
        seed: 1,
        ..Default::default()
    };
    let d = load_dataset(&DatasetName::FashionMnist, &opts, Device::Cpu).unwrap();
    assert_eq!(
        (d.train.len(), d.val.len(), d.test.len()),
        (54_000, 6_000, 10_000)
    );
    assert_eq!(d.classes[9], "Ankle boot");
    let all = tch::Tensor::cat(&[&d.train.y, &d.val.y], 0);
    let counts = Vec::<i64>::try_from(all.bincount(None::<tch::Tensor>, 10)).unwrap();
    assert!(counts.iter().all(|&c| c == 6000), "{counts:?}");
    let mean = d.test.x.mean(Kind::Float).double_value(&[]);
    assert!((0.2..0.4).contains(&mean), "pixel mean {mean}");
}
