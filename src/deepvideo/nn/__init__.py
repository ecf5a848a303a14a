"""deepvideo.nn"""
