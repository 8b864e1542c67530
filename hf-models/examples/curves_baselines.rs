//! The held-out reconstruction error of predictors that ignore their input, on the
//! `curves` preset's data (20 000 training images, the first 2000 of 10 000 held-out
//! images, seed 1): the mean training image, and the image of zeros. A deep
//! autoencoder whose error sits at the first has learnt nothing about its input.
//!
//! ```sh
//! cargo run --release -p hf-models --example curves_baselines [SEED]
//! ```

use hf_models::curves;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seed = std::env::args().nth(1).map_or(Ok(1), |s| s.parse())?;
    let (train, held_out, evaluated) = (20_000, 10_000, 2000);
    let pixels = curves::SIDE * curves::SIDE;
    let all = curves::generate(train + held_out, seed)?;
    let (train_images, test_images) = all.split_at(train * pixels);

    let mut mean = vec![0.0f64; pixels];
    for image in train_images.chunks(pixels) {
        for (m, &p) in mean.iter_mut().zip(image) {
            *m += f64::from(p) / train as f64;
        }
    }
    let error = |prediction: &[f64]| {
        test_images
            .chunks(pixels)
            .take(evaluated)
            .map(|image| {
                image
                    .iter()
                    .zip(prediction)
                    .map(|(&t, &y)| (f64::from(t) - y).powi(2))
                    .sum::<f64>()
            })
            .sum::<f64>()
            / evaluated as f64
    };
    let ink: f64 = mean.iter().sum();
    println!("curves, seed {seed}: mean ink per image {ink:.2} (of {pixels} pixels)");
    println!("held-out error of the mean training image: {:.3}", error(&mean));
    println!(
        "held-out error of the image of zeros:     {:.3}",
        error(&vec![0.0; pixels])
    );
    Ok(())
}
