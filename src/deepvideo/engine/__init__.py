"""deepvideo.engine"""
