"""The ROS 2 shell around the ROS-free core: the only package that imports rclpy or *_msgs.

Modules: ``node`` (MahmrNode + main), ``params`` (declarations -> frozen NodeConfig), ``convert`` (FrameResult
<-> messages, TF, markers), ``image`` (Image/CompressedImage -> BGR), ``sync`` (image/CameraInfo pairing
fallback), ``worker`` (latest-frame inference thread), ``tf`` (TF broadcaster fallback).
"""
