"""The ROS 2 shell around the ROS-free core: the only package that imports rclpy or *_msgs.

Modules: ``node`` (MahmrNode + main), ``params`` (declarations -> frozen NodeConfig), ``inputs``
(input subscriptions and their QoS), ``sync`` (image/CameraInfo pairing fallback, colour/depth
joining), ``worker`` (latest-frame inference thread), ``convert`` (FrameResult <-> messages, TF,
markers), ``image`` (Image/CompressedImage -> BGR), ``tf`` (TF broadcaster fallback),
``diagnostics``, ``hri`` (REP-155), ``dds`` (Fast DDS profile for camera-sized frames), ``player``
(demo camera), ``msgdef`` (MCAP schemas), ``commands`` (the CLI's demo and replay).
"""
