"""deepvideo.flow"""
