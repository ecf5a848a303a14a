"""Using a trained model: windowed prediction over long videos and streams (timelines),
export to ONNX / TorchScript, and an HTTP app with a web page (``deepvideo serve``)."""
