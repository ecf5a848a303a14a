"""Fisher vectors against the direct formula (Perronnin et al. 2010); encoder round trip."""

import numpy as np
import pytest

from deepvideo.features import encoding as enc


def _direct_fv(x, w, mu, var):
    k, d = mu.shape
    post = np.zeros((len(x), k))
    for n in range(len(x)):
        for j in range(k):
            density = np.exp(-(x[n] - mu[j]) ** 2 / (2 * var[j])) / np.sqrt(2 * np.pi * var[j])
            post[n, j] = w[j] * np.prod(density)
        post[n] /= post[n].sum()
    g_mu, g_var = np.zeros((k, d)), np.zeros((k, d))
    for j in range(k):
        for n in range(len(x)):
            g_mu[j] += post[n, j] * (x[n] - mu[j]) / np.sqrt(var[j])
            g_var[j] += post[n, j] * ((x[n] - mu[j]) ** 2 / var[j] - 1)
        g_mu[j] /= len(x) * np.sqrt(w[j])
        g_var[j] /= len(x) * np.sqrt(2 * w[j])
    return np.concatenate([g_mu.ravel(), g_var.ravel()])


def test_paper_constants():
    assert (enc.GMM_COMPONENTS, enc.BOW_WORDS, enc.POWER_ALPHA, enc.SVM_C) == (256, 4000, 0.5, 100.0)


def test_fisher_vector_matches_direct_formula():
    rng = np.random.default_rng(0)
    w, mu, var = np.array([0.3, 0.7]), rng.normal(size=(2, 3)), rng.uniform(0.5, 2, (2, 3))
    x = rng.normal(size=(7, 3))
    fv = enc.fisher_vector(x, w, mu, var)
    assert fv.shape == (2 * 2 * 3,)
    np.testing.assert_allclose(fv, _direct_fv(x, w, mu, var), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(enc.fisher_vector(x[:0], w, mu, var), np.zeros(12))


def test_power_l2_normalisation():
    v = enc.power_l2(np.array([4.0, -9.0, 0.0]))
    np.testing.assert_allclose(v, np.array([2.0, -3.0, 0.0]) / np.sqrt(13))
    np.testing.assert_array_equal(enc.power_l2(np.zeros(3)), np.zeros(3))


def test_encoder_dimensions_round_trip_and_bow(tmp_path):
    rng = np.random.default_rng(1)
    samples = {"hog": rng.normal(size=(200, 8)), "hof": rng.normal(size=(200, 6))}
    fisher = enc.fit_encoder(samples, "fisher", components=4, whiten=True)
    v = fisher.encode({k: s[:30] for k, s in samples.items()})
    assert v.shape == (2 * 4 * 4 + 2 * 4 * 3,)  # 2·K·D per type with D halved by PCA
    np.testing.assert_allclose(np.linalg.norm(v[:32]), 1.0, rtol=1e-5)
    fisher.save(tmp_path / "enc.npz")
    loaded = enc.Encoder.load(tmp_path / "enc.npz")
    np.testing.assert_allclose(loaded.encode({k: s[:30] for k, s in samples.items()}), v, rtol=1e-6)
    bow = enc.fit_encoder(samples, "bow", components=5)
    h = bow.encode({k: s[:30] for k, s in samples.items()})
    assert h.shape == (10,) and h[:5].sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="cannot fit 256"):
        enc.fit_encoder({"hog": samples["hog"][:10]})
    with pytest.raises(KeyError, match="'hof' missing"):
        fisher.encode({"hog": samples["hog"]})


def test_svm_separates_encoded_classes():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(0, 1, (20, 5)), rng.normal(3, 1, (20, 5)), rng.normal(-3, 1, (20, 5))])
    y = np.repeat([0, 1, 2], 20)
    svm = enc.train_svm(x, y)
    assert svm.C == 100 and svm.decision_function(x).shape == (60, 3) and (svm.predict(x) == y).mean() > 0.95
